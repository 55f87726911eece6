import type { StageDefinition } from '@graft/core';
import { ingestStage } from '@graft/ingest';
import { phaseOneStage } from '@graft/phase-one';
import { phaseTwoStage } from '@graft/phase-two';
import { splitStage } from '@graft/split';
import { transplantStage } from '@graft/transplant';
import type { StageRegistry } from '@graft/pipeline';

/**
 * Every stage a pipeline config can name, composed here at the top: the runner knows stages
 * only through this map, and stage packages never import each other. Stage modules load
 * tfjs lazily, so this import is cheap.
 */
export const defaultRegistry: StageRegistry = new Map<string, StageDefinition>(
  [ingestStage, splitStage, phaseOneStage, transplantStage, phaseTwoStage].map((stage) => [stage.name, stage as unknown as StageDefinition]),
);
