// The linter: runs every rule of the catalogue over the statements PostgreSQL's own parser found. Destructive
// rules are silent in contract migrations; everything else applies to every phase. Suppression is only by
// `-- gantry:allow <rule> <reason>` right above the statement.
import type { MigrationFile, MigrationPhase } from './files.ts';
import { parseAllowDirectives } from './files.ts';
import { LINT_RULES, lintRule, type LintSeverity } from './lint-rules.ts';
import { scanSync } from 'libpg-query';
import {
  asArray,
  asObject,
  defaultVolatility,
  isSerialType,
  lockImpact,
  nameList,
  nodeOf,
  relationName,
  textOf,
  tryParseSql,
  typeNameOf,
  walk,
  type AstObject,
  type SqlStatement,
} from './sql.ts';

/** One problem the linter found. */
export interface LintFinding {
  readonly rule: string;
  readonly severity: LintSeverity;
  readonly message: string;
  /** 1-based line. */
  readonly line: number;
  /** Index of the statement in the file, or null for file-level findings. */
  readonly statement: number | null;
  readonly explanation: string;
  readonly safeAlternative: string;
  /** The migration file, when linting files. */
  readonly file?: string;
}

/** A finding that a `-- gantry:allow` comment suppressed, with its reason. */
export interface SuppressedFinding extends LintFinding {
  readonly reason: string;
}

/** What {@link lintSql} returns. */
export interface LintResult {
  readonly findings: readonly LintFinding[];
  readonly suppressed: readonly SuppressedFinding[];
  readonly errors: number;
  readonly warnings: number;
  /** The parsed statements (empty on a syntax error). */
  readonly statements: readonly SqlStatement[];
  /** Whether the runner will run this SQL in one transaction. */
  readonly transactional: boolean;
  readonly phase: MigrationPhase;
}

/** State carried from one file to the next (constraints validated by earlier migrations). */
export interface LintState {
  /** NOT VALID `CHECK (col IS NOT NULL)` constraints by name → `table.column`. */
  readonly notNullChecks: Map<string, string>;
  /** `table.column` pairs with a validated NOT NULL check. */
  readonly validatedNotNull: Set<string>;
  /** NOT VALID `CHECK` constraints by name → table. */
  readonly notValidChecks: Map<string, string>;
  /** Tables with a validated `CHECK` constraint (so ATTACH PARTITION can skip its scan). */
  readonly validatedChecks: Set<string>;
}

/** Options of {@link lintSql}. */
export interface LintOptions {
  /** Phase of the migration. @default the `-- gantry:phase` header, else `expand` */
  readonly phase?: MigrationPhase;
  /**
   * Whether the SQL runs under gantry-migrate, which sets lock_timeout and statement_timeout on every session.
   * Set false when linting SQL for another runner. @default true
   */
  readonly assumeRunnerTimeouts?: boolean;
  /** Force statement-by-statement execution (`-- gantry:no-transaction`). @default from the text */
  readonly noTransaction?: boolean;
  /** File name to put on findings. */
  readonly file?: string;
  /** Cross-file state; pass the same object for consecutive files. */
  readonly state?: LintState;
  /** Rule ids to skip entirely. @default [] */
  readonly disabledRules?: readonly string[];
}

/** A fresh cross-file state. */
export function createLintState(): LintState {
  return {
    notNullChecks: new Map(),
    validatedNotNull: new Set(),
    notValidChecks: new Map(),
    validatedChecks: new Set(),
  };
}

const PHASE_HEADER = /^[ \t]*--[ \t]*gantry:phase[ \t]+(expand|contract|backfill)[ \t]*$/m;
const NO_TRANSACTION = /^[ \t]*--[ \t]*gantry:no-transaction[ \t]*$/m;
const MAX_IDENTIFIER_BYTES = 63;
/** Text that can change the cross-file lint state (CHECK constraints, NOT VALID ones and their validation). */
const STATEFUL_PATTERN = /not\s+valid|validate\s+constraint|check\s*\(/i;

const bareName = (table: string): string => (table.split('.').pop() ?? table).toLowerCase();

function isZeroSetting(node: AstObject): boolean {
  const constant = nodeOf(asArray(node['args'])[0], 'A_Const');
  if (constant === undefined) return false;
  const integer = asObject(constant['ival']);
  if (integer !== undefined) return (integer['ival'] ?? 0) === 0;
  const text = asObject(constant['sval'])?.['sval'];
  return typeof text === 'string' && /^\s*0+\s*(ms|s|min|h|d)?\s*$/i.test(text);
}

/** Views, routines and types share a name space per kind: a DROP followed by a CREATE of the same name replaces. */
type ObjectGroup = 'relation' | 'routine' | 'type';

const DROPPED_OBJECT_GROUPS: Readonly<Record<string, ObjectGroup>> = {
  OBJECT_VIEW: 'relation',
  OBJECT_MATVIEW: 'relation',
  OBJECT_SEQUENCE: 'relation',
  OBJECT_FUNCTION: 'routine',
  OBJECT_PROCEDURE: 'routine',
  OBJECT_ROUTINE: 'routine',
  OBJECT_AGGREGATE: 'routine',
  OBJECT_TYPE: 'type',
  OBJECT_DOMAIN: 'type',
};

const DROPPED_OBJECT_WORDS: Readonly<Record<string, string>> = {
  OBJECT_VIEW: 'VIEW',
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
  OBJECT_SEQUENCE: 'SEQUENCE',
  OBJECT_FUNCTION: 'FUNCTION',
  OBJECT_PROCEDURE: 'PROCEDURE',
  OBJECT_ROUTINE: 'ROUTINE',
  OBJECT_AGGREGATE: 'AGGREGATE',
  OBJECT_TYPE: 'TYPE',
  OBJECT_DOMAIN: 'DOMAIN',
};

const lastName = (names: readonly string[]): string | undefined => names.at(-1)?.toLowerCase();

/** The object a CREATE statement makes, as `group:name`, if it is one a DROP could replace. */
function createdObjectKey(kind: string, node: AstObject): string | undefined {
  let group: ObjectGroup | undefined;
  let name: string | undefined;
  switch (kind) {
    case 'ViewStmt':
      [group, name] = ['relation', relationName(node['view'])];
      break;
    case 'CreateTableAsStmt':
      [group, name] = ['relation', relationName(asObject(node['into'])?.['rel'])];
      break;
    case 'CreateSeqStmt':
      [group, name] = ['relation', relationName(node['sequence'])];
      break;
    case 'CreateStmt':
      [group, name] = ['relation', relationName(node['relation'])];
      break;
    case 'CreateFunctionStmt':
      [group, name] = ['routine', lastName(nameList(node['funcname']))];
      break;
    case 'CompositeTypeStmt':
      [group, name] = ['type', relationName(node['typevar'])];
      break;
    case 'CreateEnumStmt':
    case 'CreateRangeStmt':
      [group, name] = ['type', lastName(nameList(node['typeName']))];
      break;
    case 'CreateDomainStmt':
      [group, name] = ['type', lastName(nameList(node['domainname']))];
      break;
    case 'DefineStmt':
      if (node['kind'] === 'OBJECT_TYPE') [group, name] = ['type', lastName(nameList(node['defnames']))];
      else if (node['kind'] === 'OBJECT_AGGREGATE') [group, name] = ['routine', lastName(nameList(node['defnames']))];
      break;
    default:
      break;
  }
  return group === undefined || name === undefined ? undefined : `${group}:${bareName(name)}`;
}

/** Names of the objects of a DROP VIEW/FUNCTION/TYPE/… statement. */
function droppedObjectNames(node: AstObject): string[] {
  return asArray(node['objects']).flatMap((item) => {
    const names =
      nodeOf(item, 'ObjectWithArgs')?.['objname'] ??
      nodeOf(item, 'TypeName')?.['names'] ??
      nodeOf(item, 'List')?.['items'];
    const name = lastName(nameList(names));
    return name === undefined ? [] : [name];
  });
}

/** SQL keywords in a DO block's body worth naming in the finding. */
const OPAQUE_KEYWORDS = /\b(execute|create|alter|drop|truncate|rename|lock|update|delete|insert)\b/gi;

function doBlockBody(node: AstObject): string {
  for (const item of asArray(node['args'])) {
    const option = nodeOf(item, 'DefElem');
    if (option?.['defname'] === 'as') return textOf(nodeOf(option['arg'], 'String')?.['sval']);
  }
  return '';
}

function constraintsOf(column: AstObject | undefined): AstObject[] {
  return asArray(column?.['constraints']).flatMap((item) => {
    const constraint = nodeOf(item, 'Constraint');
    return constraint === undefined ? [] : [constraint];
  });
}

/** The column a `CHECK (col IS NOT NULL)` constraint guards, if that is what it is. */
function notNullCheckColumn(constraint: AstObject): string | undefined {
  const test = nodeOf(constraint['raw_expr'], 'NullTest');
  if (test === undefined || test['nulltesttype'] !== 'IS_NOT_NULL') return undefined;
  const fields = nameList(nodeOf(test['arg'], 'ColumnRef')?.['fields']);
  return fields.length === 1 ? fields[0]!.toLowerCase() : undefined;
}

/**
 * Lints one migration's SQL on PostgreSQL's real parser.
 * @throws never for bad SQL: a syntax error is a `syntax-error` finding.
 * @example
 * const result = await lintSql('CREATE INDEX i ON users (email);');
 * result.findings[0]?.rule; // 'require-concurrent-index-creation'
 */
export async function lintSql(sql: string, options: LintOptions = {}): Promise<LintResult> {
  const header = PHASE_HEADER.exec(sql)?.[1] as MigrationPhase | undefined;
  const phase: MigrationPhase = options.phase ?? header ?? 'expand';
  const disabled = new Set(options.disabledRules ?? []);
  const state = options.state ?? createLintState();
  const raw: LintFinding[] = [];
  const base = options.file === undefined ? {} : { file: options.file };

  const report = (
    id: string,
    line: number,
    statement: number | null,
    message: string,
    severity?: LintSeverity,
  ): void => {
    const definition = lintRule(id);
    if (definition === undefined || disabled.has(id)) return;
    if (definition.destructive && phase === 'contract') return;
    raw.push({
      rule: id,
      severity: severity ?? definition.severity,
      message,
      line,
      statement,
      explanation: definition.explanation,
      safeAlternative: definition.safeAlternative,
      ...base,
    });
  };

  const parsed = await tryParseSql(sql);
  if ('error' in parsed) {
    report('syntax-error', parsed.error.line, null, parsed.error.message);
    return finish([], true);
  }
  const statements = parsed.statements;
  const noTransaction = options.noTransaction ?? NO_TRANSACTION.test(sql);
  const transactional = !noTransaction && statements.every((statement) => statement.transactional);

  if (header === undefined) {
    report('missing-phase', 1, null, 'No -- gantry:phase header; the file counts as an expand migration');
  }

  const created = new Set<string>();
  const isExisting = (table: string | undefined): table is string =>
    table !== undefined && !created.has(bareName(table));
  type TimeoutState = 'runner' | 'set' | 'disabled' | 'none';
  const initialTimeout: TimeoutState = options.assumeRunnerTimeouts === false ? 'none' : 'runner';
  let lockTimeout: TimeoutState = initialTimeout;
  let statementTimeout: TimeoutState = initialTimeout;
  let lockTimeoutReported = false;
  let statementTimeoutReported = false;
  let strongLockHeld = false;
  let exclusiveHeld = false;
  const addedNotValid = new Set<string>();
  const notValidForeignKeys = new Set<string>();
  // Objects this file creates, by `group:name` → statement indexes (a DROP then CREATE in one transaction replaces).
  const createdObjects = new Map<string, number[]>();
  for (const statement of statements) {
    const key = createdObjectKey(statement.kind, statement.node);
    if (key !== undefined) createdObjects.set(key, [...(createdObjects.get(key) ?? []), statement.index]);
  }
  const replacedHere = (key: string, index: number): boolean =>
    (createdObjects.get(key) ?? []).some((at) => transactional || at < index);
  const validatedUnknown = new Set<string>();
  const alterCounts = new Map<string, number>();
  const meaningful = statements.filter((statement) => statement.kind !== 'VariableSetStmt');

  const checkColumnType = (column: AstObject, statement: SqlStatement): void => {
    const type = typeNameOf(column['typeName']);
    const name = textOf(column['colname'], '?');
    const hasLength = asArray(asObject(column['typeName'])?.['typmods']).length > 0;
    if (type === 'json') report('prefer-jsonb', statement.line, statement.index, `Column "${name}" is json; use jsonb`);
    if (type === 'varchar' && hasLength) {
      report('prefer-text-field', statement.line, statement.index, `Column "${name}" is varchar(n); use text`);
    }
    if (type === 'timestamp') {
      report('prefer-timestamptz', statement.line, statement.index, `Column "${name}" is timestamp; use timestamptz`);
    }
    if (type === 'bpchar')
      report('ban-char-field', statement.line, statement.index, `Column "${name}" is char(n); use text`);
  };

  for (const statement of statements) {
    const { node, line, index } = statement;
    const at = (id: string, message: string, severity?: LintSeverity): void => {
      report(id, line, index, message, severity);
    };
    const touchesExisting = statement.tables.some((table) => isExisting(table));

    if (
      touchesExisting &&
      (lockImpact(statement.lock) === 'writes' || lockImpact(statement.lock) === 'reads and writes')
    ) {
      if ((lockTimeout === 'none' || lockTimeout === 'disabled') && !lockTimeoutReported) {
        lockTimeoutReported = true;
        at('require-lock-timeout', `${statement.lock} lock on ${statement.tables.join(', ')} without lock_timeout`);
      }
      if ((statementTimeout === 'none' || statementTimeout === 'disabled') && !statementTimeoutReported) {
        statementTimeoutReported = true;
        at(
          'require-statement-timeout',
          `${statement.lock} lock on ${statement.tables.join(', ')} without statement_timeout`,
        );
      }
    }
    if (transactional && exclusiveHeld) {
      const slow =
        statement.rewrite ||
        statement.kind === 'UpdateStmt' ||
        statement.kind === 'DeleteStmt' ||
        (statement.kind === 'IndexStmt' && node['concurrent'] !== true && touchesExisting);
      if (slow) {
        at(
          'work-after-access-exclusive',
          'Slow statement after an ACCESS EXCLUSIVE lock in the same transaction keeps the table blocked',
        );
      }
    }

    switch (statement.kind) {
      case 'VariableSetStmt': {
        const name = textOf(node['name']).toLowerCase();
        if (node['kind'] !== 'VAR_SET_VALUE') break;
        const value = isZeroSetting(node) ? 'disabled' : 'set';
        if (name === 'lock_timeout') lockTimeout = value;
        if (name === 'statement_timeout') statementTimeout = value;
        break;
      }
      case 'TransactionStmt':
        at('ban-explicit-transaction', `${textOf(node['kind']).replace('TRANS_STMT_', '')} in a migration file`);
        break;
      case 'IndexStmt': {
        const table = relationName(node['relation']);
        if (node['concurrent'] !== true && isExisting(table)) {
          at('require-concurrent-index-creation', `CREATE INDEX on existing table ${table} without CONCURRENTLY`);
        }
        if (node['concurrent'] === true && node['if_not_exists'] !== true) {
          at('prefer-robust-statements', 'CREATE INDEX CONCURRENTLY without IF NOT EXISTS');
        }
        break;
      }
      case 'DropStmt': {
        const type = node['removeType'];
        if (type === 'OBJECT_INDEX') {
          if (node['concurrent'] !== true) at('require-concurrent-index-deletion', 'DROP INDEX without CONCURRENTLY');
          else if (node['missing_ok'] !== true)
            at('prefer-robust-statements', 'DROP INDEX CONCURRENTLY without IF EXISTS');
        } else if (type === 'OBJECT_TABLE') {
          const existing = statement.tables.filter((table) => isExisting(table));
          if (existing.length > 0)
            at('ban-drop-table', `DROP TABLE ${existing.join(', ')} outside a contract migration`);
        } else if (type === 'OBJECT_SCHEMA') {
          at('ban-drop-schema-or-database', 'DROP SCHEMA outside a contract migration');
        } else if (typeof type === 'string' && DROPPED_OBJECT_GROUPS[type] !== undefined) {
          const group = DROPPED_OBJECT_GROUPS[type];
          const dropped = droppedObjectNames(node).filter((name) => !replacedHere(`${group}:${bareName(name)}`, index));
          if (dropped.length > 0) {
            at(
              'ban-drop-object',
              `DROP ${DROPPED_OBJECT_WORDS[type] ?? 'object'} ${dropped.join(', ')} outside a contract migration`,
            );
          }
        }
        break;
      }
      case 'DoStmt': {
        const keywords = [
          ...new Set([...doBlockBody(node).matchAll(OPAQUE_KEYWORDS)].map((match) => match[1]!.toUpperCase())),
        ];
        at(
          'opaque-procedural-code',
          `DO block: the linter cannot check the statements it runs${keywords.length > 0 ? ` (it uses ${keywords.join(', ')})` : ''}`,
          phase === 'expand' ? 'error' : 'warning',
        );
        break;
      }
      case 'CallStmt': {
        const name = nameList(asObject(node['funccall'])?.['funcname']).join('.');
        at(
          'opaque-procedural-code',
          `CALL ${name}(): the linter cannot check the statements the procedure runs`,
          phase === 'expand' ? 'error' : 'warning',
        );
        break;
      }
      case 'AlterTableMoveAllStmt':
        at(
          'ban-set-tablespace',
          `Moving everything in tablespace ${textOf(node['orig_tablespacename'], '?')} copies each table under ACCESS EXCLUSIVE`,
        );
        break;
      case 'DropdbStmt':
        at('ban-drop-schema-or-database', 'DROP DATABASE outside a contract migration');
        break;
      case 'ReindexStmt':
        if (statement.transactional) at('require-concurrent-reindex', 'REINDEX without CONCURRENTLY');
        break;
      case 'VacuumStmt':
        if (statement.rewrite)
          at('ban-vacuum-full-and-cluster', 'VACUUM FULL rewrites the table under ACCESS EXCLUSIVE');
        break;
      case 'ClusterStmt':
        at('ban-vacuum-full-and-cluster', 'CLUSTER rewrites the table under ACCESS EXCLUSIVE');
        break;
      case 'RefreshMatViewStmt':
        if (node['concurrent'] !== true) {
          at('refresh-materialized-view-concurrently', 'REFRESH MATERIALIZED VIEW without CONCURRENTLY');
        }
        break;
      case 'LockStmt':
        at('ban-lock-table', `LOCK TABLE in ${statement.lock} mode`);
        break;
      case 'TruncateStmt': {
        if (node['behavior'] === 'DROP_CASCADE') at('ban-truncate-cascade', 'TRUNCATE … CASCADE');
        const existing = statement.tables.filter((table) => isExisting(table));
        if (existing.length > 0) at('ban-truncate', `TRUNCATE ${existing.join(', ')} outside a contract migration`);
        break;
      }
      case 'RenameStmt': {
        const type = node['renameType'];
        const table = relationName(node['relation']);
        if (type === 'OBJECT_COLUMN' && isExisting(table)) {
          at('renaming-column', `RENAME COLUMN ${String(node['subname'])} on ${table} breaks old application versions`);
        } else if ((type === 'OBJECT_TABLE' && isExisting(table)) || type === 'OBJECT_SCHEMA') {
          at('renaming-table', `Renaming ${table ?? String(node['subname'])} breaks old application versions`);
        }
        break;
      }
      case 'AlterEnumStmt':
        if (typeof node['oldVal'] === 'string') {
          at('renaming-enum-value', `RENAME VALUE '${node['oldVal']}' breaks old application versions`);
        } else if (node['newValNeighbor'] === undefined) {
          at('require-enum-value-ordering', `ADD VALUE '${String(node['newVal'])}' without BEFORE/AFTER`);
        }
        break;
      case 'CreateDomainStmt':
        if (asArray(node['constraints']).some((item) => nodeOf(item, 'Constraint')?.['contype'] === 'CONSTR_CHECK')) {
          at('domain-with-constraint', 'CREATE DOMAIN with a CHECK constraint');
        }
        break;
      case 'AlterDomainStmt':
        if (node['subtype'] === 'C')
          at('domain-with-constraint', 'ALTER DOMAIN … ADD CONSTRAINT re-checks every column');
        break;
      case 'CreateTrigStmt': {
        const table = relationName(node['relation']);
        if (isExisting(table)) at('create-trigger-lock', `CREATE TRIGGER takes SHARE ROW EXCLUSIVE on ${table}`);
        break;
      }
      case 'UpdateStmt':
      case 'DeleteStmt': {
        const table = relationName(node['relation']);
        if (isExisting(table)) {
          at(
            'unbatched-data-change',
            `${statement.kind === 'UpdateStmt' ? 'UPDATE' : 'DELETE'} of ${table} in a migration`,
          );
        }
        break;
      }
      case 'CreateStmt': {
        const table = relationName(node['relation']);
        if (table !== undefined) created.add(bareName(table));
        const hasCheck = [...walk(node['tableElts'])].some(
          ({ kind, body }) => kind === 'Constraint' && body['contype'] === 'CONSTR_CHECK',
        );
        if (hasCheck && table !== undefined) state.validatedChecks.add(bareName(table));
        const primaryColumns = new Set<string>();
        for (const item of asArray(node['tableElts'])) {
          const constraint = nodeOf(item, 'Constraint');
          if (constraint?.['contype'] === 'CONSTR_PRIMARY') {
            for (const key of nameList(constraint['keys'])) primaryColumns.add(key.toLowerCase());
          }
        }
        for (const item of asArray(node['tableElts'])) {
          const column = nodeOf(item, 'ColumnDef');
          if (column === undefined) continue;
          checkColumnType(column, statement);
          const constraints = constraintsOf(column);
          const isKey =
            primaryColumns.has(textOf(column['colname']).toLowerCase()) ||
            constraints.some((c) => c['contype'] === 'CONSTR_PRIMARY' || c['contype'] === 'CONSTR_IDENTITY');
          const type = typeNameOf(column['typeName']);
          if (
            isKey &&
            ['int4', 'int2', 'serial', 'serial4', 'smallserial', 'serial2', 'integer', 'int'].includes(type)
          ) {
            at('prefer-bigint-key', `Key column "${String(column['colname'])}" is ${type}; use bigint`);
          }
        }
        break;
      }
      case 'AlterTableStmt': {
        const table = relationName(node['relation']);
        const existing = isExisting(table);
        if (existing && table !== undefined) {
          const count = (alterCounts.get(bareName(table)) ?? 0) + 1;
          alterCounts.set(bareName(table), count);
          if (count === 2) at('combine-alter-table', `Second ALTER TABLE on ${table} in one migration`);
        }
        for (const item of asArray(node['cmds'])) {
          const command = nodeOf(item, 'AlterTableCmd');
          if (command === undefined) continue;
          const subtype = command['subtype'];
          const columnName = textOf(command['name']);
          if (subtype === 'AT_AddColumn') {
            const column = nodeOf(command['def'], 'ColumnDef');
            if (column === undefined) continue;
            checkColumnType(column, statement);
            if (!existing) continue;
            const name = textOf(column['colname'], '?');
            const constraints = constraintsOf(column);
            const kinds = new Set(constraints.map((constraint) => constraint['contype']));
            const defaultExpression = constraints.find((c) => c['contype'] === 'CONSTR_DEFAULT')?.['raw_expr'];
            if (defaultExpression !== undefined) {
              const volatility = defaultVolatility(defaultExpression);
              if (volatility === 'volatile') {
                at(
                  'adding-field-with-volatile-default',
                  `Column "${name}" has a volatile default: the table is rewritten`,
                );
              } else if (volatility === 'unknown') {
                at(
                  'adding-field-with-volatile-default',
                  `Column "${name}" has a default calling a function the linter cannot classify; if it is volatile the table is rewritten`,
                  'warning',
                );
              }
            }
            const generatedStored = constraints.some(
              (c) => c['contype'] === 'CONSTR_GENERATED' && c['generated_kind'] !== 'v',
            );
            if (generatedStored) at('adding-stored-generated-column', `Column "${name}" is GENERATED … STORED`);
            if (isSerialType(column['typeName']) || kinds.has('CONSTR_IDENTITY')) {
              at('adding-auto-increment-column', `Column "${name}" is auto-incrementing: every row is rewritten`);
            }
            if (
              kinds.has('CONSTR_NOTNULL') &&
              !kinds.has('CONSTR_DEFAULT') &&
              !kinds.has('CONSTR_IDENTITY') &&
              !generatedStored &&
              !isSerialType(column['typeName'])
            ) {
              at('adding-required-field', `Column "${name}" is NOT NULL without a default`);
            }
            if (kinds.has('CONSTR_UNIQUE')) at('adding-unique-constraint', `Column "${name}" is added UNIQUE`);
            if (kinds.has('CONSTR_PRIMARY')) at('adding-primary-key', `Column "${name}" is added as PRIMARY KEY`);
            if (kinds.has('CONSTR_FOREIGN')) {
              at('adding-foreign-key-without-not-valid', `Column "${name}" is added with a validated REFERENCES`);
            }
            if (kinds.has('CONSTR_CHECK'))
              at('adding-check-without-not-valid', `Column "${name}" is added with a validated CHECK`);
          } else if (subtype === 'AT_AlterColumnType') {
            if (existing) at('changing-column-type', `Type change of ${table}.${columnName}`);
          } else if (subtype === 'AT_SetNotNull') {
            const key = `${bareName(table ?? '')}.${columnName.toLowerCase()}`;
            if (existing && !state.validatedNotNull.has(key) && !validatedUnknown.has(bareName(table ?? ''))) {
              at(
                'setting-not-null-without-check',
                `SET NOT NULL on ${table}.${columnName} scans the table under ACCESS EXCLUSIVE`,
              );
            }
          } else if (subtype === 'AT_AddConstraint') {
            const constraint = nodeOf(command['def'], 'Constraint');
            if (constraint === undefined) continue;
            const name = typeof constraint['conname'] === 'string' ? constraint['conname'] : undefined;
            const notValid = constraint['skip_validation'] === true;
            switch (constraint['contype']) {
              case 'CONSTR_FOREIGN':
                if (existing && !notValid) {
                  at('adding-foreign-key-without-not-valid', `Foreign key ${name ?? ''} on ${table} validated at once`);
                }
                if (notValid && name !== undefined) {
                  addedNotValid.add(name);
                  notValidForeignKeys.add(name);
                }
                break;
              case 'CONSTR_CHECK': {
                if (notValid && name !== undefined) state.notValidChecks.set(name, bareName(table ?? ''));
                else if (!notValid) state.validatedChecks.add(bareName(table ?? ''));
                const column = notNullCheckColumn(constraint);
                if (existing && !notValid)
                  at('adding-check-without-not-valid', `CHECK ${name ?? ''} on ${table} validated at once`);
                if (notValid && name !== undefined) {
                  addedNotValid.add(name);
                  if (column !== undefined) state.notNullChecks.set(name, `${bareName(table ?? '')}.${column}`);
                } else if (column !== undefined) {
                  state.validatedNotNull.add(`${bareName(table ?? '')}.${column}`);
                }
                break;
              }
              case 'CONSTR_UNIQUE':
                if (existing && constraint['indexname'] === undefined) {
                  at(
                    'adding-unique-constraint',
                    `UNIQUE ${name ?? ''} on ${table} builds its index under ACCESS EXCLUSIVE`,
                  );
                }
                break;
              case 'CONSTR_PRIMARY':
                if (existing && constraint['indexname'] === undefined) {
                  at('adding-primary-key', `PRIMARY KEY on ${table} builds its index under ACCESS EXCLUSIVE`);
                }
                break;
              case 'CONSTR_EXCLUSION':
                if (existing) at('adding-exclusion-constraint', `EXCLUDE constraint on ${table}`);
                break;
              default:
                break;
            }
          } else if (subtype === 'AT_ValidateConstraint') {
            if (transactional && (addedNotValid.has(columnName) || strongLockHeld)) {
              at(
                'validating-in-same-transaction',
                `VALIDATE CONSTRAINT ${columnName} in the same transaction as other DDL`,
              );
            }
            const guarded = state.notNullChecks.get(columnName);
            if (guarded !== undefined) state.validatedNotNull.add(guarded);
            else validatedUnknown.add(bareName(table ?? ''));
            // A CHECK we saw added NOT VALID, or one we did not see at all (it may be a CHECK): not a foreign key.
            const checked = state.notValidChecks.get(columnName);
            if (checked !== undefined) state.validatedChecks.add(checked);
            else if (!notValidForeignKeys.has(columnName)) state.validatedChecks.add(bareName(table ?? ''));
          } else if (subtype === 'AT_DropColumn') {
            if (existing) at('ban-drop-column', `DROP COLUMN ${table}.${columnName} outside a contract migration`);
          } else if (subtype === 'AT_DropNotNull') {
            if (existing) at('ban-drop-not-null', `DROP NOT NULL on ${table}.${columnName}`);
          } else if (subtype === 'AT_DropConstraint') {
            if (existing) at('ban-drop-constraint', `DROP CONSTRAINT ${columnName} on ${table}`);
          } else if (subtype === 'AT_SetTableSpace') {
            if (existing) at('ban-set-tablespace', `SET TABLESPACE copies ${table} under ACCESS EXCLUSIVE`);
          } else if (subtype === 'AT_SetLogged' || subtype === 'AT_SetUnLogged') {
            if (existing) {
              at(
                'ban-set-logged-unlogged',
                `SET ${subtype === 'AT_SetLogged' ? 'LOGGED' : 'UNLOGGED'} rewrites ${table} under ACCESS EXCLUSIVE`,
              );
            }
          } else if (subtype === 'AT_AttachPartition') {
            const partition = relationName(asObject(nodeOf(command['def'], 'PartitionCmd'))?.['name']);
            if (isExisting(partition) && !state.validatedChecks.has(bareName(partition))) {
              at(
                'attach-partition-without-check',
                `ATTACH PARTITION ${partition} scans it under ACCESS EXCLUSIVE: no validated CHECK matching its bounds`,
              );
            }
          } else if (subtype === 'AT_DetachPartition') {
            if (asObject(nodeOf(command['def'], 'PartitionCmd'))?.['concurrent'] !== true) {
              at('require-concurrent-partition-detach', `DETACH PARTITION on ${table} without CONCURRENTLY`);
            }
          }
        }
        break;
      }
      default:
        break;
    }
    if (touchesExisting && transactional) {
      if (statement.lock === 'ACCESS EXCLUSIVE') exclusiveHeld = true;
      if (lockImpact(statement.lock) === 'writes' || lockImpact(statement.lock) === 'reads and writes')
        strongLockHeld = true;
    }
  }

  // The parser truncates long identifiers to 63 bytes (as the server does), so look at the raw tokens — only
  // when the text has a run of 64+ identifier characters at all (scanning every file is the linter's main cost).
  const mayHaveLongIdentifier = /[\p{L}\p{N}_$]{64,}|"[^"]{64,}"/u.test(sql);
  for (const token of mayHaveLongIdentifier ? scanSync(sql).tokens : []) {
    if (token.tokenName !== 'IDENT') continue;
    const name = token.text.replace(/^"|"$/g, '');
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes <= MAX_IDENTIFIER_BYTES) continue;
    const owner = statements.find((statement) => token.start >= statement.start && token.start < statement.end);
    const line = Buffer.from(sql, 'utf8').subarray(0, token.start).toString('utf8').split('\n').length;
    report(
      'identifier-too-long',
      line,
      owner?.index ?? null,
      `Identifier "${name.slice(0, 20)}…" is ${bytes} bytes; PostgreSQL truncates it to 63`,
    );
  }

  const nonTransactional = statements.find((statement) => !statement.transactional);
  if (nonTransactional !== undefined && meaningful.length > 1) {
    report(
      'mixed-non-transactional-file',
      nonTransactional.line,
      nonTransactional.index,
      'This statement cannot run in a transaction, so the whole file runs statement by statement',
    );
  }
  return finish(statements, transactional);

  function finish(parsedStatements: readonly SqlStatement[], isTransactional: boolean): LintResult {
    const allows = parseAllowDirectives(sql);
    const used = new Set<number>();
    const findings: LintFinding[] = [];
    const suppressed: SuppressedFinding[] = [];
    const validAllow = allows.map((allow) => allow.reason.length > 0 && lintRule(allow.rule) !== undefined);
    const statementFor = (offset: number): number | null => {
      const next = parsedStatements.find((statement) => statement.start > offset);
      return next === undefined ? null : next.index;
    };
    const extra: LintFinding[] = [];
    allows.forEach((allow, position) => {
      if (allow.rule === '' || lintRule(allow.rule) === undefined) {
        extra.push(makeFinding('unknown-allow-rule', allow.line, `Unknown rule "${allow.rule}" in -- gantry:allow`));
      } else if (allow.reason.length === 0) {
        extra.push(makeFinding('allow-needs-reason', allow.line, `-- gantry:allow ${allow.rule} has no reason`));
      }
      void position;
    });
    for (const finding of raw) {
      const target = finding.statement;
      const index = allows.findIndex((allow, position) => {
        if (!validAllow[position] || allow.rule !== finding.rule) return false;
        return target === null
          ? statementFor(allow.offset) === 0 || parsedStatements.length === 0
          : statementFor(allow.offset) === target;
      });
      if (index >= 0) {
        used.add(index);
        suppressed.push({ ...finding, reason: allows[index]!.reason });
      } else {
        findings.push(finding);
      }
    }
    allows.forEach((allow, position) => {
      if (validAllow[position] && !used.has(position) && !disabled.has(allow.rule)) {
        extra.push(makeFinding('unused-allow', allow.line, `-- gantry:allow ${allow.rule} suppressed nothing`));
      }
    });
    const all = [...findings, ...extra.filter((finding) => !disabled.has(finding.rule))].sort(
      (a, b) => a.line - b.line,
    );
    return {
      findings: all,
      suppressed,
      errors: all.filter((finding) => finding.severity === 'error').length,
      warnings: all.filter((finding) => finding.severity === 'warning').length,
      statements: parsedStatements,
      transactional: isTransactional,
      phase,
    };
  }

  function makeFinding(id: string, line: number, message: string): LintFinding {
    const definition = lintRule(id)!;
    return {
      rule: id,
      severity: definition.severity,
      message,
      line,
      statement: null,
      explanation: definition.explanation,
      safeAlternative: definition.safeAlternative,
      ...base,
    };
  }
}

/** Lint result of one migration file. */
export interface FileLintResult extends LintResult {
  readonly script: string;
  readonly version: string;
}

/**
 * Lints migration files in version order, carrying constraint state from one file to the next (a CHECK
 * validated in V3 makes SET NOT NULL in V4 safe). Backfill steps are skipped.
 * @example
 * const results = await lintMigrationFiles(loadMigrationFiles('./migrations'));
 */
export async function lintMigrationFiles(
  files: readonly MigrationFile[],
  options: Omit<LintOptions, 'phase' | 'file' | 'state' | 'noTransaction'> & {
    /** Only report these versions; other files are parsed only when they can change the cross-file state. */
    readonly only?: ReadonlySet<string>;
  } = {},
): Promise<FileLintResult[]> {
  const state = createLintState();
  const results: FileLintResult[] = [];
  const { only, ...lintOptions } = options;
  for (const file of files) {
    if (file.kind !== 'sql') continue;
    const wanted = only === undefined || only.has(file.version);
    if (!wanted && !STATEFUL_PATTERN.test(file.source)) continue;
    const result = await lintSql(file.source, {
      ...lintOptions,
      phase: file.phase,
      file: file.script,
      state,
      noTransaction: file.noTransaction,
    });
    if (wanted) results.push({ ...result, script: file.script, version: file.version });
  }
  return results;
}

/** The ids of every rule (for `--rules` listings and validation of `disabledRules`). */
export const LINT_RULE_IDS: readonly string[] = LINT_RULES.map((definition) => definition.id);
