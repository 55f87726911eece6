/**
 * Every failure graft reports on purpose is a GraftError: a stable `code` that tests
 * and scripts can match on, a message that says what went wrong *and what to do*, and
 * the process exit code the CLI should use. Low-level failures are wrapped with
 * `{ cause }` so the original stack survives for `--verbose` debugging.
 */
export type ExitCode = 1 | 2;

/** Exit code for bad input the user can fix (configs, arguments, files): 2. Runtime failures: 1. */
export const USAGE_EXIT_CODE: ExitCode = 2;

/**
 * The codes of a package's const map (`{ truncated: 'IDX_TRUNCATED', ... } as const`) as a
 * union type: each package declares its codes once, in one place, next to what raises them.
 */
export type ErrorCodeOf<Codes extends Record<string, string>> = Codes[keyof Codes];

export class GraftError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly exitCode: ExitCode;

  constructor(code: Code, message: string, options: { cause?: unknown; exitCode?: ExitCode } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GraftError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Bad input the user can fix: an invalid config, argument, or input file. Exit code 2. */
export class UsageError<Code extends string = string> extends GraftError<Code> {
  constructor(code: Code, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, exitCode: USAGE_EXIT_CODE });
    this.name = 'UsageError';
  }
}

export function isGraftError(error: unknown): error is GraftError {
  return error instanceof GraftError;
}

/**
 * Turns a Node.js system error (ENOENT, EACCES, ENOSPC, EROFS, ...) into a plain
 * sentence naming the path, for use at IO boundaries.
 */
export function describeSystemError(error: unknown, path: string): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return `${path} does not exist`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied for ${path}`;
    case 'ENOSPC':
      return `no space left on the device holding ${path}; free some space and retry`;
    case 'EROFS':
      return `${path} is on a read-only file system; choose a writable location (--artifacts DIR)`;
    case 'EISDIR':
      return `${path} is a directory, expected a file`;
    case 'ENOTDIR':
      return `${path} (or one of its parents) is not a directory`;
    default:
      return `${path}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
