// Shared output for benchmarks: an aligned table on stdout and a JSON file under reports/bench/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One row of a benchmark table: a named subject and its figures. */
export type BenchRow = Readonly<Record<string, string | number>>;

/** A benchmark's result: its tables plus target checks (ratio against a peer, met or not). */
export interface BenchReport {
  readonly name: string;
  readonly description: string;
  readonly environment?: Readonly<Record<string, string | number>>;
  readonly tables: readonly { readonly title: string; readonly rows: readonly BenchRow[] }[];
  readonly targets: readonly { readonly target: string; readonly measured: string; readonly met: boolean }[];
  /** Lines printed between the tables and the targets: what a reader needs to interpret the figures. */
  readonly notes?: readonly string[];
}

function formatCell(value: string | number): string {
  if (typeof value === 'string') return value;
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toFixed(3);
}

/** Renders rows as an aligned text table (columns from the first row's keys). */
export function renderTable(rows: readonly BenchRow[]): string {
  const first = rows[0];
  if (first === undefined) return '(no rows)';
  const columns = Object.keys(first);
  const cells = rows.map((row) => columns.map((column) => formatCell(row[column] ?? '')));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((line) => line[index]!.length)));
  const line = (values: readonly string[]): string =>
    values
      .map((value, index) => (index === 0 ? value.padEnd(widths[index]!) : value.padStart(widths[index]!)))
      .join('  ');
  return [line(columns), widths.map((width) => '─'.repeat(width)).join('  '), ...cells.map(line)].join('\n');
}

/** The value at quantile `q` (0–1) of values sorted ascending, by rank ⌊q·n⌋; NaN when there are none. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** The median of the values (the upper of the two middle ones when their count is even); NaN when empty. */
export function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** Prints the report and writes it to reports/bench/<name>.json at the repository root. */
export function publishReport(report: BenchReport): void {
  const out: string[] = [`${report.name}: ${report.description}`];
  if (report.environment !== undefined) {
    out.push(
      Object.entries(report.environment)
        .map(([key, value]) => `${key}=${value}`)
        .join('  '),
    );
  }
  for (const table of report.tables) out.push('', table.title, renderTable(table.rows));
  if (report.notes !== undefined && report.notes.length > 0) out.push('', ...report.notes);
  if (report.targets.length > 0) {
    out.push('', 'Targets');
    for (const target of report.targets) {
      out.push(`  ${target.met ? '✓' : '✗'} ${target.target}: ${target.measured}`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
  const dir = join(import.meta.dirname, '..', '..', 'reports', 'bench');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${report.name}.json`),
    `${JSON.stringify({ ...report, at: new Date().toISOString() }, null, 2)}\n`,
  );
}
