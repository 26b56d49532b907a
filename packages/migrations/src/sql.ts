// SQL analysis on PostgreSQL's own parser (libpg-query, compiled to WASM): statements with their source text and
// line, the tables each touches and the lock each takes. The linter and `plan` build on this.
import { loadModule, parseSync } from 'libpg-query';

/** A parsed AST object (libpg-query's JSON form). */
export type AstObject = Readonly<Record<string, unknown>>;

/** PostgreSQL's table lock modes, weakest first, plus `none` for statements that lock no existing table. */
export const LOCK_LEVELS = [
  'none',
  'ACCESS SHARE',
  'ROW SHARE',
  'ROW EXCLUSIVE',
  'SHARE UPDATE EXCLUSIVE',
  'SHARE',
  'SHARE ROW EXCLUSIVE',
  'EXCLUSIVE',
  'ACCESS EXCLUSIVE',
] as const;

/** A table lock mode (see {@link LOCK_LEVELS}). */
export type LockLevel = (typeof LOCK_LEVELS)[number];

/** What other sessions cannot do on a table while a lock is held or queued. */
export type LockImpact = 'nothing' | 'other DDL' | 'writes' | 'reads and writes';

/** One statement of a SQL file with what the analysis found. */
export interface SqlStatement {
  /** 0-based position in the file. */
  readonly index: number;
  /** The statement's source text, without the terminating semicolon. */
  readonly text: string;
  /** 1-based line where the statement starts. */
  readonly line: number;
  /** Byte offsets (UTF-8) of the statement in the file. */
  readonly start: number;
  readonly end: number;
  /** The parse node type, e.g. `AlterTableStmt`. */
  readonly kind: string;
  /** The parse node's body. */
  readonly node: AstObject;
  /** Strongest table lock the statement takes. */
  readonly lock: LockLevel;
  /** Tables the statement locks, as written (`schema.table` when qualified). */
  readonly tables: readonly string[];
  /** Whether the statement rewrites a table or builds an index over it while locked. */
  readonly rewrite: boolean;
  /** False for statements PostgreSQL refuses inside a transaction block (`CREATE INDEX CONCURRENTLY`…). */
  readonly transactional: boolean;
}

/** A syntax error found by the parser. */
export interface SqlSyntaxError {
  readonly message: string;
  readonly line: number;
}

let loaded: Promise<void> | undefined;

/** Loads the WASM parser once. Called by every async entry point; harmless to call again. */
export async function loadSqlParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

// ---------------------------------------------------------------------------------------------- AST helpers

/** The object at `value` or undefined. */
export function asObject(value: unknown): AstObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as AstObject) : undefined;
}

/** The string at `value`, or `fallback`. */
export function textOf(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

/** The array at `value` or an empty one. */
export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** A wrapped node `{ Kind: body }` split into kind and body. */
export function unwrap(value: unknown): { readonly kind: string; readonly body: AstObject } | undefined {
  const object = asObject(value);
  if (object === undefined) return undefined;
  const keys = Object.keys(object);
  if (keys.length !== 1) return undefined;
  const kind = keys[0]!;
  const body = asObject(object[kind]);
  return body === undefined ? undefined : { kind, body };
}

/** The body of `value` when it is a node of type `kind`. */
export function nodeOf(value: unknown, kind: string): AstObject | undefined {
  const node = unwrap(value);
  return node?.kind === kind ? node.body : undefined;
}

/** Strings of a `[{String: {sval}}]` name list. */
export function nameList(value: unknown): string[] {
  return asArray(value).flatMap((item) => {
    const text = nodeOf(item, 'String')?.['sval'];
    return typeof text === 'string' ? [text] : [];
  });
}

/** `schema.table` (or `table`) from a RangeVar body. */
export function relationName(value: unknown): string | undefined {
  const range = asObject(value);
  const name = range?.['relname'];
  if (typeof name !== 'string') return undefined;
  const schema = range?.['schemaname'];
  return typeof schema === 'string' ? `${schema}.${name}` : name;
}

/** Every object nested in `value` (depth first), for rules that look for a construct anywhere. */
export function* walk(value: unknown): Generator<{ readonly kind: string; readonly body: AstObject }> {
  if (Array.isArray(value)) {
    for (const item of value) yield* walk(item);
    return;
  }
  const object = asObject(value);
  if (object === undefined) return;
  for (const [key, child] of Object.entries(object)) {
    const body = asObject(child);
    if (body !== undefined && /^[A-Z]/.test(key)) yield { kind: key, body };
    if (typeof child === 'object' && child !== null) yield* walk(child);
  }
}

// ------------------------------------------------------------------------------------------------- parsing

/** Converts a UTF-8 byte offset in `source` into a 1-based line number. */
function lineAt(bytes: Buffer, offset: number): number {
  let line = 1;
  const limit = Math.min(offset, bytes.length);
  for (let index = 0; index < limit; index += 1) if (bytes[index] === 0x0a) line += 1;
  return line;
}

/**
 * Parses `sql` into statements with lock analysis.
 * @throws SqlSyntaxError-shaped `Error` (`{ message, line }` in `cause`) when the text does not parse; callers
 *   that want findings instead use {@link tryParseSql}.
 */
export async function parseSql(sql: string): Promise<SqlStatement[]> {
  const result = await tryParseSql(sql);
  if ('error' in result) throw new Error(`line ${result.error.line}: ${result.error.message}`);
  return result.statements;
}

/** Parses `sql`, returning either the statements or the syntax error. */
export async function tryParseSql(
  sql: string,
): Promise<{ readonly statements: SqlStatement[] } | { readonly error: SqlSyntaxError }> {
  await loadSqlParser();
  const bytes = Buffer.from(sql, 'utf8');
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const position = details?.cursorPosition ?? 0;
    const prefix = sql.slice(0, Math.max(0, position));
    const message = error instanceof Error ? error.message : String(error);
    return { error: { message, line: prefix.split('\n').length } };
  }
  const statements: SqlStatement[] = [];
  for (const item of asArray(asObject(tree)?.['stmts'])) {
    const entry = asObject(item);
    const wrapped = unwrap(entry?.['stmt']);
    if (entry === undefined || wrapped === undefined) continue;
    const start = typeof entry['stmt_location'] === 'number' ? entry['stmt_location'] : 0;
    const length = typeof entry['stmt_len'] === 'number' ? entry['stmt_len'] : bytes.length - start;
    // The parser's start includes leading comments and blank lines; report the line of the first real token.
    let textStart = start;
    const raw = bytes.subarray(start, start + length).toString('utf8');
    const leading = /^(?:\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*/.exec(raw)?.[0] ?? '';
    textStart += Buffer.byteLength(leading, 'utf8');
    const text = raw.slice(leading.length).trim();
    const analysis = analyseStatement(wrapped.kind, wrapped.body);
    statements.push({
      index: statements.length,
      text,
      line: lineAt(bytes, textStart),
      start: textStart,
      end: start + length,
      kind: wrapped.kind,
      node: wrapped.body,
      ...analysis,
    });
  }
  return { statements };
}

// ------------------------------------------------------------------------------------------ expressions

/** Functions known to be volatile: a column default calling one rewrites the whole table on ADD COLUMN. */
const VOLATILE_FUNCTIONS = new Set([
  'random',
  'gen_random_uuid',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'uuidv4',
  'uuidv7',
  'clock_timestamp',
  'timeofday',
  'nextval',
  'setseed',
  'txid_current',
  'pg_current_xact_id',
  'statement_timestamp',
]);

/** Functions known to be stable or immutable, so a default calling them keeps ADD COLUMN metadata-only. */
const NON_VOLATILE_FUNCTIONS = new Set([
  'now',
  'transaction_timestamp',
  'current_setting',
  'lower',
  'upper',
  'coalesce',
  'to_jsonb',
  'jsonb_build_object',
  'jsonb_build_array',
  'json_build_object',
  'array_fill',
  'make_interval',
  'to_timestamp',
]);

/**
 * How volatile a default expression is: `constant` (literals, casts, stable SQL value functions like
 * CURRENT_TIMESTAMP), `volatile` (calls a known volatile function) or `unknown` (calls a function we cannot
 * classify statically).
 */
export function defaultVolatility(expression: unknown): 'constant' | 'volatile' | 'unknown' {
  let verdict: 'constant' | 'volatile' | 'unknown' = 'constant';
  const visit = (kind: string, body: AstObject): void => {
    if (kind === 'FuncCall') {
      const names = nameList(body['funcname']);
      const name = (names[names.length - 1] ?? '').toLowerCase();
      if (VOLATILE_FUNCTIONS.has(name)) verdict = 'volatile';
      else if (!NON_VOLATILE_FUNCTIONS.has(name) && verdict === 'constant') verdict = 'unknown';
    } else if (kind === 'SubLink' && verdict === 'constant') {
      verdict = 'unknown';
    }
  };
  const root = unwrap(expression);
  if (root !== undefined) visit(root.kind, root.body);
  for (const { kind, body } of walk(expression)) visit(kind, body);
  return verdict;
}

/** The type name of a ColumnDef's `typeName` in lower case, without the `pg_catalog.` prefix. */
export function typeNameOf(typeName: unknown): string {
  const names = nameList(asObject(typeName)?.['names']);
  return (names[names.length - 1] ?? '').toLowerCase();
}

/** Whether a ColumnDef type is one of the serial pseudo-types. */
export function isSerialType(typeName: unknown): boolean {
  return ['serial', 'serial4', 'bigserial', 'serial8', 'smallserial', 'serial2'].includes(typeNameOf(typeName));
}

// --------------------------------------------------------------------------------------------- lock levels

/** The stronger of two lock levels. */
export function strongerLock(a: LockLevel, b: LockLevel): LockLevel {
  return LOCK_LEVELS.indexOf(a) >= LOCK_LEVELS.indexOf(b) ? a : b;
}

/** What a lock level stops other sessions from doing while it is held or waiting in the queue. */
export function lockImpact(level: LockLevel): LockImpact {
  switch (level) {
    case 'none':
    case 'ACCESS SHARE':
    case 'ROW SHARE':
    case 'ROW EXCLUSIVE':
      return 'nothing';
    case 'SHARE UPDATE EXCLUSIVE':
      return 'other DDL';
    case 'SHARE':
    case 'SHARE ROW EXCLUSIVE':
    case 'EXCLUSIVE':
      return 'writes';
    case 'ACCESS EXCLUSIVE':
      return 'reads and writes';
  }
}

interface Analysis {
  readonly lock: LockLevel;
  readonly tables: readonly string[];
  readonly rewrite: boolean;
  readonly transactional: boolean;
}

const NO_LOCK: Analysis = { lock: 'none', tables: [], rewrite: false, transactional: true };

/** Lock level of one ALTER TABLE sub-command (PostgreSQL docs, "ALTER TABLE", per sub-form). */
function alterTableCommandLock(command: AstObject): { lock: LockLevel; rewrite: boolean; extraTables: string[] } {
  const subtype = textOf(command['subtype']);
  switch (subtype) {
    case 'AT_SetStatistics':
    case 'AT_SetOptions':
    case 'AT_ResetOptions':
    case 'AT_SetRelOptions':
    case 'AT_ResetRelOptions':
    case 'AT_ClusterOn':
    case 'AT_DropCluster':
    case 'AT_ValidateConstraint':
    case 'AT_AttachPartition':
      return { lock: 'SHARE UPDATE EXCLUSIVE', rewrite: false, extraTables: [] };
    case 'AT_DetachPartition': {
      const concurrent = asObject(nodeOf(command['def'], 'PartitionCmd'))?.['concurrent'] === true;
      return { lock: concurrent ? 'SHARE UPDATE EXCLUSIVE' : 'ACCESS EXCLUSIVE', rewrite: false, extraTables: [] };
    }
    case 'AT_EnableTrig':
    case 'AT_DisableTrig':
    case 'AT_EnableAlwaysTrig':
    case 'AT_EnableReplicaTrig':
    case 'AT_EnableTrigAll':
    case 'AT_DisableTrigAll':
    case 'AT_EnableTrigUser':
    case 'AT_DisableTrigUser':
      return { lock: 'SHARE ROW EXCLUSIVE', rewrite: false, extraTables: [] };
    case 'AT_AddConstraint': {
      const constraint = nodeOf(command['def'], 'Constraint');
      if (constraint?.['contype'] === 'CONSTR_FOREIGN') {
        const referenced = relationName(constraint['pktable']);
        return { lock: 'SHARE ROW EXCLUSIVE', rewrite: false, extraTables: referenced ? [referenced] : [] };
      }
      const builds =
        (constraint?.['contype'] === 'CONSTR_UNIQUE' ||
          constraint?.['contype'] === 'CONSTR_PRIMARY' ||
          constraint?.['contype'] === 'CONSTR_EXCLUSION') &&
        constraint['indexname'] === undefined;
      return { lock: 'ACCESS EXCLUSIVE', rewrite: builds, extraTables: [] };
    }
    case 'AT_AlterColumnType':
    case 'AT_SetTableSpace':
    case 'AT_SetLogged':
    case 'AT_SetUnLogged':
      return { lock: 'ACCESS EXCLUSIVE', rewrite: true, extraTables: [] };
    case 'AT_AddColumn': {
      const column = nodeOf(command['def'], 'ColumnDef');
      const rewrite =
        isSerialType(column?.['typeName']) ||
        asArray(column?.['constraints']).some((item) => {
          const constraint = nodeOf(item, 'Constraint');
          return (
            constraint?.['contype'] === 'CONSTR_GENERATED' ||
            constraint?.['contype'] === 'CONSTR_IDENTITY' ||
            (constraint?.['contype'] === 'CONSTR_DEFAULT' && defaultVolatility(constraint['raw_expr']) === 'volatile')
          );
        });
      const extraTables = asArray(column?.['constraints']).flatMap((item) => {
        const constraint = nodeOf(item, 'Constraint');
        const referenced =
          constraint?.['contype'] === 'CONSTR_FOREIGN' ? relationName(constraint['pktable']) : undefined;
        return referenced ? [referenced] : [];
      });
      return { lock: 'ACCESS EXCLUSIVE', rewrite, extraTables };
    }
    default:
      return { lock: 'ACCESS EXCLUSIVE', rewrite: false, extraTables: [] };
  }
}

const LOCK_MODE_NUMBERS: Readonly<Record<number, LockLevel>> = {
  1: 'ACCESS SHARE',
  2: 'ROW SHARE',
  3: 'ROW EXCLUSIVE',
  4: 'SHARE UPDATE EXCLUSIVE',
  5: 'SHARE',
  6: 'SHARE ROW EXCLUSIVE',
  7: 'EXCLUSIVE',
  8: 'ACCESS EXCLUSIVE',
};

/** Lock, tables, rewrite and transactionality of one statement. */
function analyseStatement(kind: string, node: AstObject): Analysis {
  const one = (table: string | undefined, lock: LockLevel, rewrite = false, transactional = true): Analysis => ({
    lock: table === undefined ? 'none' : lock,
    tables: table === undefined ? [] : [table],
    rewrite,
    transactional,
  });
  switch (kind) {
    case 'AlterTableStmt': {
      const table = relationName(node['relation']);
      if (node['objtype'] !== 'OBJECT_TABLE' && node['objtype'] !== 'OBJECT_MATVIEW') {
        // ALTER INDEX … SET TABLESPACE copies the index.
        const moves = asArray(node['cmds']).some(
          (item) => nodeOf(item, 'AlterTableCmd')?.['subtype'] === 'AT_SetTableSpace',
        );
        return one(table, 'ACCESS EXCLUSIVE', moves);
      }
      let lock: LockLevel = 'none';
      let rewrite = false;
      const extra: string[] = [];
      let transactional = true;
      for (const item of asArray(node['cmds'])) {
        const command = nodeOf(item, 'AlterTableCmd');
        if (command === undefined) continue;
        const result = alterTableCommandLock(command);
        lock = strongerLock(lock, result.lock);
        rewrite ||= result.rewrite;
        extra.push(...result.extraTables);
        if (command['subtype'] === 'AT_DetachPartition') {
          transactional &&= asObject(nodeOf(command['def'], 'PartitionCmd'))?.['concurrent'] !== true;
        }
      }
      return { lock, tables: [...(table ? [table] : []), ...extra], rewrite, transactional };
    }
    case 'IndexStmt': {
      const concurrent = node['concurrent'] === true;
      return one(
        relationName(node['relation']),
        concurrent ? 'SHARE UPDATE EXCLUSIVE' : 'SHARE',
        !concurrent,
        !concurrent,
      );
    }
    case 'DropStmt': {
      const type = node['removeType'];
      const concurrent = node['concurrent'] === true;
      const names = asArray(node['objects']).map((item) => nameList(nodeOf(item, 'List')?.['items']).join('.'));
      if (type === 'OBJECT_INDEX') {
        return {
          lock: concurrent ? 'SHARE UPDATE EXCLUSIVE' : 'ACCESS EXCLUSIVE',
          tables: names,
          rewrite: false,
          transactional: !concurrent,
        };
      }
      if (type === 'OBJECT_TABLE' || type === 'OBJECT_MATVIEW' || type === 'OBJECT_VIEW') {
        return { lock: 'ACCESS EXCLUSIVE', tables: names, rewrite: false, transactional: true };
      }
      if (type === 'OBJECT_TRIGGER' || type === 'OBJECT_RULE' || type === 'OBJECT_POLICY') {
        // objects are [table..., name]; the table is everything but the last element.
        const tables = asArray(node['objects']).map((item) =>
          nameList(nodeOf(item, 'List')?.['items']).slice(0, -1).join('.'),
        );
        return { lock: 'ACCESS EXCLUSIVE', tables, rewrite: false, transactional: true };
      }
      return NO_LOCK;
    }
    case 'CreateTrigStmt':
      return one(relationName(node['relation']), 'SHARE ROW EXCLUSIVE');
    case 'RenameStmt':
      return one(relationName(node['relation']), 'ACCESS EXCLUSIVE');
    case 'TruncateStmt':
      return {
        lock: 'ACCESS EXCLUSIVE',
        tables: asArray(node['relations']).flatMap((item) => {
          const name = relationName(nodeOf(item, 'RangeVar'));
          return name ? [name] : [];
        }),
        rewrite: true,
        transactional: true,
      };
    case 'ReindexStmt': {
      const concurrent = asArray(node['params']).some(
        (item) => nodeOf(item, 'DefElem')?.['defname'] === 'concurrently',
      );
      return one(
        relationName(node['relation']) ?? textOf(node['name']),
        concurrent ? 'SHARE UPDATE EXCLUSIVE' : 'ACCESS EXCLUSIVE',
        !concurrent,
        !concurrent,
      );
    }
    case 'VacuumStmt': {
      const full = asArray(node['options']).some((item) => nodeOf(item, 'DefElem')?.['defname'] === 'full');
      const tables = asArray(node['rels']).flatMap((item) => {
        const name = relationName(nodeOf(item, 'VacuumRelation')?.['relation']);
        return name ? [name] : [];
      });
      const isVacuum = node['is_vacuumcmd'] === true;
      return {
        lock: full ? 'ACCESS EXCLUSIVE' : 'SHARE UPDATE EXCLUSIVE',
        tables,
        rewrite: full,
        transactional: !isVacuum,
      };
    }
    case 'ClusterStmt':
      return one(relationName(node['relation']), 'ACCESS EXCLUSIVE', true);
    case 'RefreshMatViewStmt': {
      const concurrent = node['concurrent'] === true;
      return one(relationName(node['relation']), concurrent ? 'EXCLUSIVE' : 'ACCESS EXCLUSIVE', true);
    }
    case 'LockStmt': {
      const level = LOCK_MODE_NUMBERS[Number(node['mode'] ?? 8)] ?? 'ACCESS EXCLUSIVE';
      return {
        lock: level,
        tables: asArray(node['relations']).flatMap((item) => {
          const name = relationName(nodeOf(item, 'RangeVar'));
          return name ? [name] : [];
        }),
        rewrite: false,
        transactional: true,
      };
    }
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'InsertStmt':
    case 'MergeStmt':
      return one(relationName(node['relation']), 'ROW EXCLUSIVE');
    case 'CreateStmt': {
      // A new table locks nothing that exists, except the tables its foreign keys reference.
      const referenced = [...walk(node['tableElts'])].flatMap(({ kind: inner, body }) =>
        inner === 'Constraint' && body['contype'] === 'CONSTR_FOREIGN' ? [relationName(body['pktable'])] : [],
      );
      const tables = referenced.filter((name): name is string => name !== undefined);
      return { lock: tables.length > 0 ? 'SHARE ROW EXCLUSIVE' : 'none', tables, rewrite: false, transactional: true };
    }
    case 'AlterTableMoveAllStmt':
      // Every table (or index) of a tablespace, copied under ACCESS EXCLUSIVE; which ones is unknown here.
      return { lock: 'ACCESS EXCLUSIVE', tables: [], rewrite: true, transactional: true };
    case 'CommentStmt':
      return NO_LOCK;
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'AlterSystemStmt':
      return { ...NO_LOCK, transactional: false };
    case 'AlterEnumStmt':
      return NO_LOCK;
    default:
      return NO_LOCK;
  }
}
