import type { z } from 'zod';

/** One validation problem: where (a JSON path such as `entries.split.params.holdout[0]`, '' for the root) and what. */
export interface Problem {
  path: string;
  message: string;
}

/** `['entries', 'split', 'holdout', 0]` -> `entries.split.holdout[0]`, appended to `prefix` if given. */
export function formatJsonPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

/**
 * Every issue of a zod error as a Problem with its JSON path. Unknown keys are named
 * (zod says only "Unrecognized key"), because a typo in a key is the usual cause.
 */
export function zodProblems(error: z.ZodError | { issues: readonly z.core.$ZodIssue[] }, prefix = ''): Problem[] {
  return error.issues.map((issue) => {
    const message =
      issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
    return { path: formatJsonPath(issue.path, prefix), message };
  });
}

/** Problems as sentences: `path: message`, or just the message for the root. */
export function formatProblems(problems: readonly Problem[]): string[] {
  return problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`));
}

/** A zod error as sentences, `path: message` each (the form files and run records are reported in). */
export function formatZodIssues(error: z.ZodError | { issues: readonly z.core.$ZodIssue[] }, prefix = ''): string[] {
  return formatProblems(zodProblems(error, prefix));
}
