/**
 * The slice of a pino Logger the model code uses, so library callers and tests can
 * pass anything with these methods (pino's Logger fits).
 */
export interface ModelLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: ModelLogger = {
  info() {},
  warn() {},
};
