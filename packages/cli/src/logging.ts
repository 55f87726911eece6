import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import type { ProgressReporter } from '@graft/core';
import type { SingleBar } from 'cli-progress';
import pino, { type Logger, type StreamEntry } from 'pino';

// pino-pretty and cli-progress serve a terminal only; on pipes, in CI and under Nx's
// non-interactive output they are never loaded.

/** stderr that first clears the current line, so a log record never lands on the tail of a progress bar. */
const lineClearingStderr = new Writable({
  write(chunk: Buffer, _encoding, done) {
    process.stderr.write('\r\x1b[2K');
    process.stderr.write(chunk, done);
  },
});

/**
 * Logs go to stderr (human-readable on a TTY, NDJSON otherwise) so stdout stays free for
 * results (`--json`); a run additionally writes every record as NDJSON to its log.ndjson.
 */
export async function createLogger(options: { logFile?: string; level?: string; terminal?: Writable } = {}): Promise<Logger> {
  const level = options.level ?? 'info';
  const pretty = process.stderr.isTTY ? (await import('pino-pretty')).default : undefined;
  const streams: StreamEntry[] = [
    {
      level: level as pino.Level,
      stream: pretty
        ? pretty({
            // One line per record; entry/stage/key are already in every message. The log
            // file keeps every field.
            destination: options.terminal ?? lineClearingStderr,
            colorize: true,
            singleLine: true,
            ignore: 'pid,hostname,entry,stage,key,runId',
            translateTime: 'HH:MM:ss',
          })
        : pino.destination({ fd: 2, sync: true }),
    },
  ];
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    streams.push({ level: 'debug', stream: pino.destination({ dest: options.logFile, sync: true, mkdir: true }) });
  }
  return pino({ level: 'debug', base: undefined }, pino.multistream(streams));
}

/** A bar on a terminal; on pipes and in CI, a log record every tenth of the way instead. */
export async function createProgressFactory(logger: Logger, interactive = process.stderr.isTTY === true): Promise<(entry: string) => ProgressReporter> {
  if (!interactive) return (entry) => logProgress(entry, logger);
  const cliProgress = (await import('cli-progress')).default;
  return (entry) => barProgress(entry, cliProgress);
}

function barProgress(entry: string, cliProgress: typeof import('cli-progress')): ProgressReporter {
  let bar: SingleBar | undefined;
  let fieldsText = '';
  return {
    start(label, total) {
      bar?.stop();
      bar = new cliProgress.SingleBar(
        { format: `${label === entry ? entry : `${entry} ${label}`} [{bar}] {value}/{total} | ETA {eta_formatted} | {fields}`, stream: process.stderr, hideCursor: true, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { fields: '' });
    },
    update(current, fields) {
      if (fields) fieldsText = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' ');
      bar?.update(current, { fields: fieldsText });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

function logProgress(entry: string, logger: Logger): ProgressReporter {
  let total = 0;
  let label = '';
  let nextReport = 0;
  let started = 0;
  return {
    start(newLabel, newTotal) {
      label = newLabel;
      total = newTotal;
      nextReport = Math.max(1, Math.ceil(total / 10));
      started = performance.now();
    },
    update(current, fields) {
      if (total === 0 || current < nextReport) return;
      nextReport = current + Math.max(1, Math.ceil(total / 10));
      const elapsed = (performance.now() - started) / 1000;
      const etaSeconds = current > 0 ? Math.round((elapsed / current) * (total - current)) : undefined;
      const what = label === entry ? entry : `${entry} ${label}`;
      logger.info({ entry, progress: { label, current, total, etaSeconds, ...fields } }, `${what}: ${current}/${total}${etaSeconds === undefined ? '' : `, ETA ${etaSeconds} s`}`);
    },
    stop() {
      total = 0;
    },
  };
}

/** Progress of the builds `graft run --jobs` runs at once: one bar each on a terminal, log records otherwise. */
export interface BuildProgress {
  /** A reporter for one build of `entry` (for run `run` of several); its log records (off a terminal) go to `logger`, the build's run log. */
  progressFor(build: { entry: string; run?: number }, logger: Logger): ProgressReporter;
  /** Where pretty log lines go on a terminal (above the bars); undefined off a terminal. */
  terminal?: Writable;
  stop(): void;
}

/**
 * cli-progress's MultiBar: one line per active build, redrawn together, log lines printed
 * above them (MultiBar.log), so parallel builds never overwrite each other's bar.
 */
export async function createBuildProgress(interactive = process.stderr.isTTY === true): Promise<BuildProgress> {
  if (!interactive) return { progressFor: ({ entry }, logger) => logProgress(entry, logger), stop() {} };
  const cliProgress = (await import('cli-progress')).default;
  const bars = new cliProgress.MultiBar(
    { format: '{label} [{bar}] {value}/{total} | ETA {eta_formatted} | {fields}', stream: process.stderr, hideCursor: true, etaBuffer: 50, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  const terminal = new Writable({
    write(chunk: Buffer, _encoding, done) {
      bars.log(chunk.toString('utf8'));
      done();
    },
  });
  return {
    terminal,
    progressFor({ entry, run }) {
      const name = run === undefined ? entry : `run ${run} ${entry}`;
      let bar: SingleBar | undefined;
      let fieldsText = '';
      return {
        start(label, total) {
          if (bar) bars.remove(bar);
          bar = bars.create(total, 0, { label: label === entry ? name : `${name} ${label}`, fields: '' });
        },
        update(current, fields) {
          if (fields) fieldsText = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' ');
          bar?.update(current, { fields: fieldsText });
        },
        stop() {
          if (bar) bars.remove(bar);
          bar = undefined;
        },
      };
    },
    stop: () => bars.stop(),
  };
}
