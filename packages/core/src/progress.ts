import type { ProgressReporter } from './stage.ts';

/** A ProgressReporter that shows nothing: for tests and library use. */
export const silentProgress: ProgressReporter = {
  start() {},
  update() {},
  stop() {},
};
