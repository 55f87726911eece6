import { defaultRegistry, pipelineJsonSchema } from '@graft/pipeline';
import type { Argv } from 'yargs';

/** `graft schema`: the pipeline config JSON Schema (pipelines/pipeline.schema.json is this output). */
export function registerSchemaCommand<T>(cli: Argv<T>): void {
  cli.command('schema', 'Print the JSON Schema of pipeline configs', {}, () => {
    process.stdout.write(JSON.stringify(pipelineJsonSchema(defaultRegistry), null, 2) + '\n');
  });
}
