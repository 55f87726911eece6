import type { Argv } from 'yargs';
import type { GlobalOptions } from '../options.ts';

/** `graft schema`: the pipeline config JSON Schema (pipelines/pipeline.schema.json is this output). */
export function registerSchemaCommand(cli: Argv<GlobalOptions>): void {
  cli.command('schema', 'Print the JSON Schema of pipeline configs', {}, async () => {
    const [{ pipelineJsonSchema }, { defaultRegistry }] = await Promise.all([import('@graft/pipeline'), import('../registry.ts')]);
    process.stdout.write(JSON.stringify(pipelineJsonSchema(defaultRegistry), null, 2) + '\n');
  });
}
