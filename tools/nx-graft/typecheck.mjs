// @ts-check
/**
 * `nx run <package>:typecheck`: type-checks one workspace package with the root's compiler
 * options (tsconfig.base.json), so a new package needs no tsconfig of its own. Its
 * dependencies' sources are part of the program (packages export .ts), but only this
 * package's files are reported: each package answers for its own errors.
 *
 *   node tools/nx-graft/typecheck.mjs packages/data
 */
import { readdirSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

const projectRoot = process.argv[2];
if (!projectRoot) {
  process.stderr.write('usage: node tools/nx-graft/typecheck.mjs <package dir>\n');
  process.exit(2);
}
const workspace = resolve(import.meta.dirname, '../..');
const root = resolve(workspace, projectRoot);

/** @param {string} dir @returns {string[]} */
function tsFiles(dir) {
  /** @type {string[]} */
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && /\.(c|m)?ts$/.test(entry.name) && !path.split(sep).includes('node_modules') && !path.split(sep).includes('dist')) files.push(path);
  }
  return files;
}

const configPath = join(workspace, 'tsconfig.base.json');
const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, workspace, undefined, configPath);
const rootNames = tsFiles(root);
const program = ts.createProgram({ rootNames, options });
const own = new Set(rootNames.map((file) => resolve(file)));
const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => !d.file || own.has(resolve(d.file.fileName)));
if (diagnostics.length > 0) {
  const host = { getCanonicalFileName: (/** @type {string} */ f) => f, getCurrentDirectory: () => workspace, getNewLine: () => '\n' };
  process.stderr.write(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
  process.stderr.write(`\n${diagnostics.length} type error(s) in ${relative(workspace, root)}\n`);
  process.exit(1);
}
process.stdout.write(`${relative(workspace, root)}: ${rootNames.length} files type-check\n`);
