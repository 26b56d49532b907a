// Backfill progress for terminals and pipelines: a redrawn bar on a TTY, JSON lines otherwise, both with rows/s
// and ETA.
import type { BackfillProgress } from './backfill.ts';

/** Where progress goes. */
export interface ProgressStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** Options of {@link createProgressReporter}. */
export interface ProgressReporterOptions {
  readonly stream: ProgressStream;
  /** Force JSON lines (default: JSON lines unless the stream is a TTY). */
  readonly json?: boolean;
  /** Minimum milliseconds between two JSON lines. @default 1_000 */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

const formatSeconds = (seconds: number | null): string => {
  if (seconds === null || !Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
};

/** One line of the TTY bar. */
export function renderProgressBar(progress: BackfillProgress, width = 80): string {
  const fraction = progress.rowsTotal > 0 ? Math.min(1, progress.rowsDone / progress.rowsTotal) : 0;
  const label = `${progress.version} ${progress.table}`;
  const tail = ` ${(fraction * 100).toFixed(0).padStart(3)}% ${progress.rowsDone.toLocaleString('en-US')}/${progress.rowsTotal.toLocaleString('en-US')} rows ${Math.round(progress.rowsPerSecond).toLocaleString('en-US')} rows/s ETA ${formatSeconds(progress.etaSeconds)}`;
  const barWidth = Math.max(10, Math.min(40, width - label.length - tail.length - 4));
  const filled = Math.round(fraction * barWidth);
  return `${label} [${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}]${tail}`;
}

/** A progress sink: `update` after every batch, `done` to finish the line. */
export interface ProgressReporter {
  readonly update: (progress: BackfillProgress) => void;
  readonly done: () => void;
}

/**
 * Returns a progress callback for backfills, plus `done()` to finish the line.
 * @example
 * const reporter = createProgressReporter({ stream: process.stderr });
 * createMigrator({ ..., onProgress: reporter.update });
 */
export function createProgressReporter(options: ProgressReporterOptions): ProgressReporter {
  const json = options.json ?? options.stream.isTTY !== true;
  const interval = options.intervalMs ?? 1_000;
  const now = options.now ?? Date.now;
  let lastLine = Number.NEGATIVE_INFINITY;
  let pending: BackfillProgress | undefined;
  let drawn = false;
  const emit = (progress: BackfillProgress): void => {
    options.stream.write(
      `${JSON.stringify({
        event: 'migrations.backfill.progress',
        version: progress.version,
        table: progress.table,
        rowsDone: progress.rowsDone,
        rowsTotal: progress.rowsTotal,
        rowsRemaining: progress.rowsRemaining,
        rowsPerSecond: Math.round(progress.rowsPerSecond),
        etaSeconds: progress.etaSeconds === null ? null : Math.ceil(progress.etaSeconds),
        batches: progress.batches,
        batchSize: progress.batchSize,
      })}\n`,
    );
  };
  return {
    update: (progress) => {
      if (json) {
        pending = progress;
        if (now() - lastLine >= interval) {
          lastLine = now();
          emit(progress);
          pending = undefined;
        }
        return;
      }
      drawn = true;
      options.stream.write(`\r${renderProgressBar(progress, options.stream.columns ?? 80)}\u001b[K`);
    },
    done: () => {
      if (json && pending !== undefined) emit(pending);
      pending = undefined;
      if (!json && drawn) options.stream.write('\n');
      drawn = false;
    },
  };
}
