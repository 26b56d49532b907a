// Joins the files on disk with the history table: what is applied, pending, failed, out of order, tampered
// with or missing. `info`, `validate`, `migrate` and the monitor all read this one computation.
import type { BackfillStatus } from './backfill.ts';
import type { MigrationFile, MigrationPhase } from './files.ts';
import type { HistoryRow } from './store.ts';
import { compareVersions } from './version.ts';

/** The state of one migration. */
export type MigrationState =
  | 'applied'
  | 'pending'
  | 'backfilling'
  | 'failed'
  | 'out-of-order'
  | 'checksum-mismatch'
  | 'missing'
  | 'baseline'
  | 'below-baseline';

/** One line of `info`. */
export interface MigrationStatus {
  readonly version: string;
  readonly description: string;
  readonly phase: MigrationPhase | 'baseline';
  readonly script: string | null;
  readonly state: MigrationState;
  readonly checksum: string | null;
  readonly appliedChecksum: string | null;
  readonly installedOn: string | null;
  readonly installedBy: string | null;
  readonly executionMs: number | null;
  readonly transactional: boolean | null;
  readonly error: string | null;
  readonly forcedReason: string | null;
}

/** The whole picture. */
export interface SchemaStatus {
  /** Highest successfully applied version (baseline included), or null. */
  readonly current: string | null;
  /** `backfill` while a backfill is unfinished, else the phase of the newest applied migration. */
  readonly phase: MigrationPhase | null;
  /** Newest applied contract migration, or null. */
  readonly lastContract: string | null;
  readonly pending: number;
  readonly failed: readonly { readonly version: string; readonly description: string }[];
  readonly migrations: readonly MigrationStatus[];
}

const PENDING_STATES: readonly MigrationState[] = ['pending', 'backfilling', 'out-of-order'];

/** Whether a state means "not applied yet, will be applied". */
export function isPendingState(state: MigrationState): boolean {
  return PENDING_STATES.includes(state);
}

/** Computes the status of every migration from files, history and backfill state. */
export function computeStatus(
  files: readonly MigrationFile[],
  history: readonly HistoryRow[],
  backfills: readonly BackfillStatus[],
): SchemaStatus {
  const latest = new Map<string, HistoryRow>();
  const latestSuccess = new Map<string, HistoryRow>();
  for (const row of history) {
    latest.set(row.version, row);
    if (row.success) latestSuccess.set(row.version, row);
  }
  const successes = [...latestSuccess.values()];
  const baseline = successes
    .filter((row) => row.phase === 'baseline')
    .sort((a, b) => compareVersions(b.version, a.version))[0];
  const newest = successes.sort((a, b) => compareVersions(b.version, a.version))[0];
  const contracts = successes
    .filter((row) => row.phase === 'contract')
    .sort((a, b) => compareVersions(b.version, a.version));
  const backfillByVersion = new Map(backfills.map((backfill) => [backfill.version, backfill]));

  const migrations: MigrationStatus[] = [];
  const fromRow = (
    row: HistoryRow | undefined,
  ): Pick<
    MigrationStatus,
    'appliedChecksum' | 'installedOn' | 'installedBy' | 'executionMs' | 'transactional' | 'error' | 'forcedReason'
  > => ({
    appliedChecksum: row?.checksum ?? null,
    installedOn: row?.installedOn.toISOString() ?? null,
    installedBy: row?.installedBy ?? null,
    executionMs: row?.executionMs ?? null,
    transactional: row?.transactional ?? null,
    error: row?.error ?? null,
    forcedReason: row?.forcedReason ?? null,
  });

  for (const file of files) {
    const row = latest.get(file.version);
    let state: MigrationState;
    if (
      baseline !== undefined &&
      compareVersions(file.version, baseline.version) <= 0 &&
      (row === undefined || row.phase === 'baseline')
    ) {
      state = 'below-baseline';
    } else if (row === undefined) {
      const backfill = backfillByVersion.get(file.version);
      if (backfill !== undefined && backfill.state !== 'done')
        state = backfill.state === 'failed' ? 'failed' : 'backfilling';
      else if (newest !== undefined && compareVersions(file.version, newest.version) < 0) state = 'out-of-order';
      else state = 'pending';
    } else if (!row.success) {
      state = 'failed';
    } else if (row.checksum !== null && row.checksum !== file.checksum) {
      state = 'checksum-mismatch';
    } else {
      state = 'applied';
    }
    migrations.push({
      version: file.version,
      description: file.description,
      phase: file.phase,
      script: file.script,
      state,
      checksum: file.checksum,
      ...fromRow(row),
      error:
        state === 'failed' && row === undefined
          ? (backfillByVersion.get(file.version)?.lastError ?? null)
          : (row?.error ?? null),
    });
  }
  const known = new Set(files.map((file) => file.version));
  for (const [version, row] of latest) {
    if (known.has(version)) continue;
    if (row.phase === 'baseline') {
      migrations.push({
        version,
        description: row.description,
        phase: 'baseline',
        script: null,
        state: 'baseline',
        checksum: null,
        ...fromRow(row),
      });
    } else if (row.success) {
      migrations.push({
        version,
        description: row.description,
        phase: row.phase,
        script: row.script,
        state: 'missing',
        checksum: null,
        ...fromRow(row),
      });
    } else {
      migrations.push({
        version,
        description: row.description,
        phase: row.phase,
        script: row.script,
        state: 'failed',
        checksum: null,
        ...fromRow(row),
      });
    }
  }
  migrations.sort((a, b) => compareVersions(a.version, b.version));

  const unfinishedBackfill = backfills.some(
    (backfill) => backfill.state !== 'done' && latestSuccess.get(backfill.version) === undefined,
  );
  const newestPhase = newest === undefined || newest.phase === 'baseline' ? null : newest.phase;
  return {
    current: newest?.version ?? null,
    phase: unfinishedBackfill ? 'backfill' : newestPhase,
    lastContract: contracts[0]?.version ?? null,
    pending: migrations.filter((migration) => isPendingState(migration.state)).length,
    failed: migrations
      .filter((migration) => migration.state === 'failed')
      .map((migration) => ({ version: migration.version, description: migration.description })),
    migrations,
  };
}
