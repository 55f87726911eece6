/**
 * A training step's pieces for the dev scripts that time it piece by piece (ab-kernels.ts,
 * profile-step.ts): the seed network for a phase, its variables, and the fused Adam over what
 * that phase trains, with the recipes' L2 decay (phase one: every layer, 9 classes; phase two:
 * the head only, 10 classes). The stages themselves go through @graft/train's trainLoop.
 */
import { Rng } from '@graft/core';
import { SEED_NETWORK, VARIABLE_ORDER, buildNetwork, networkVariables } from '@graft/model';
import type { NetworkSpec } from '@graft/model';
import { createAdam } from '@graft/train';

export function phaseSetup(phase: 'one' | 'two') {
  const spec: NetworkSpec = { ...SEED_NETWORK, numClasses: phase === 'one' ? 9 : 10 };
  const rng = new Rng(0);
  const model = buildNetwork(spec, rng);
  const vars = networkVariables(model);
  const trained = phase === 'one' ? VARIABLE_ORDER : (['headKernel', 'headBias'] as const);
  const regularised = phase === 'one' ? [vars.convKernel, vars.fc1Kernel, vars.headKernel] : [vars.headKernel];
  const decay = trained.map((n) => (regularised.includes(vars[n]) ? 0.001 / regularised.length : 0));
  const optimizer = createAdam(trained.map((n) => vars[n]), { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, { decay });
  return { spec, rng, model, vars, regularised, optimizer };
}
