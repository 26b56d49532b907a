// The catalogue of dangerous DDL the linter knows: id, severity, why it hurts and what to do instead, with a
// failing and a passing example each (the unit tests run every example; `gantry-migrate lint --rules` prints
// this table). Sources: the merged squawk / strong_migrations / Atlas / eugene catalogue in our reference study.
import type { MigrationPhase } from './files.ts';

/** How bad a finding is: errors fail `lint` and `migrate`, warnings are printed. */
export type LintSeverity = 'error' | 'warning';

/** One lint rule. */
export interface LintRule {
  /** Stable id, used in `-- gantry:allow <id> <reason>`. */
  readonly id: string;
  readonly severity: LintSeverity;
  /** Whether the rule is about breaking old application versions or losing data: it is silent in a contract migration. */
  readonly destructive: boolean;
  readonly summary: string;
  /** What goes wrong in production. */
  readonly explanation: string;
  /** The safe way to get the same result. */
  readonly safeAlternative: string;
  /** A migration that triggers the rule and one that does not (phase defaults to expand). */
  readonly examples: {
    readonly failing: string;
    readonly passing: string;
    readonly phase?: MigrationPhase;
    readonly nonTransactional?: boolean;
  };
}

const rule = (definition: LintRule): LintRule => Object.freeze(definition);

/** Every rule of the linter, by id. */
export const LINT_RULES: readonly LintRule[] = Object.freeze([
  rule({
    id: 'syntax-error',
    severity: 'error',
    destructive: false,
    summary: 'The file does not parse as PostgreSQL SQL.',
    explanation: 'PostgreSQL would reject the migration halfway through a deploy.',
    safeAlternative: 'Fix the syntax; the message gives the line.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUM email text;',
      passing: 'ALTER TABLE users ADD COLUMN email text;',
    },
  }),
  rule({
    id: 'require-concurrent-index-creation',
    severity: 'error',
    destructive: false,
    summary: 'CREATE INDEX without CONCURRENTLY on an existing table.',
    explanation:
      'A plain CREATE INDEX holds a SHARE lock for the whole build: every INSERT, UPDATE and DELETE on the table waits, for minutes on a large table.',
    safeAlternative:
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS … in its own migration (the runner runs it outside a transaction and drops an invalid leftover before a retry).',
    examples: {
      failing: 'CREATE INDEX users_email_idx ON users (email);',
      passing: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);',
      nonTransactional: true,
    },
  }),
  rule({
    id: 'require-concurrent-index-deletion',
    severity: 'error',
    destructive: false,
    summary: 'DROP INDEX without CONCURRENTLY.',
    explanation: 'DROP INDEX takes an ACCESS EXCLUSIVE lock on the table: reads and writes wait behind it.',
    safeAlternative: 'DROP INDEX CONCURRENTLY IF EXISTS … in its own migration.',
    examples: {
      failing: 'DROP INDEX users_email_idx;',
      passing: 'DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;',
      nonTransactional: true,
    },
  }),
  rule({
    id: 'require-concurrent-reindex',
    severity: 'error',
    destructive: false,
    summary: 'REINDEX without CONCURRENTLY.',
    explanation: 'A plain REINDEX blocks writes to the table and reads that use the index while it rebuilds.',
    safeAlternative: 'REINDEX … CONCURRENTLY (PostgreSQL 12+).',
    examples: {
      failing: 'REINDEX INDEX users_email_idx;',
      passing: 'REINDEX INDEX CONCURRENTLY users_email_idx;',
      nonTransactional: true,
    },
  }),
  rule({
    id: 'require-concurrent-partition-detach',
    severity: 'error',
    destructive: false,
    summary: 'DETACH PARTITION without CONCURRENTLY.',
    explanation: 'Detaching a partition takes ACCESS EXCLUSIVE on the parent table: all queries on it wait.',
    safeAlternative: 'ALTER TABLE … DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+).',
    examples: {
      failing: 'ALTER TABLE events DETACH PARTITION events_2020;',
      passing: 'ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;',
      nonTransactional: true,
    },
  }),
  rule({
    id: 'attach-partition-without-check',
    severity: 'error',
    destructive: false,
    summary: 'ATTACH PARTITION of an existing table without a validated CHECK constraint matching its bounds.',
    explanation:
      'To prove every row fits the partition bounds, PostgreSQL scans the whole table while holding ACCESS EXCLUSIVE on it (and scans a DEFAULT partition too), with SHARE UPDATE EXCLUSIVE on the parent for the whole scan. A validated CHECK constraint that implies the bounds lets it skip the scan.',
    safeAlternative:
      'ADD CONSTRAINT … CHECK (<the bounds>) NOT VALID on the table, VALIDATE CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE only), then ATTACH PARTITION, then drop the now redundant CHECK.',
    examples: {
      failing: "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
      passing:
        "CREATE TABLE events_2026 (LIKE events INCLUDING ALL);\nALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
    },
  }),
  rule({
    id: 'ban-vacuum-full-and-cluster',
    severity: 'error',
    destructive: false,
    summary: 'VACUUM FULL or CLUSTER.',
    explanation: 'Both rewrite the whole table under ACCESS EXCLUSIVE: the table is offline until they finish.',
    safeAlternative: 'pg_repack (or REPACK CONCURRENTLY where available), run outside the deploy.',
    examples: { failing: 'VACUUM FULL users;', passing: 'VACUUM (ANALYZE) users;', nonTransactional: true },
  }),
  rule({
    id: 'ban-set-tablespace',
    severity: 'error',
    destructive: false,
    summary: 'ALTER TABLE/INDEX … SET TABLESPACE, or ALTER … ALL IN TABLESPACE.',
    explanation:
      'Moving a table or an index copies every block to the new tablespace under ACCESS EXCLUSIVE: reads and writes wait for the whole copy.',
    safeAlternative:
      'Set default_tablespace for new objects; move existing data with pg_repack --tablespace (or logical replication) outside the deploy.',
    examples: {
      failing: 'ALTER TABLE orders SET TABLESPACE fast_ssd;',
      passing: 'CREATE TABLE order_archive (id bigint PRIMARY KEY) TABLESPACE slow_hdd;',
    },
  }),
  rule({
    id: 'ban-set-logged-unlogged',
    severity: 'error',
    destructive: false,
    summary: 'ALTER TABLE … SET LOGGED or SET UNLOGGED.',
    explanation:
      'Changing persistence rewrites the whole table (and its indexes) under ACCESS EXCLUSIVE; SET LOGGED also writes all of it to the WAL, which floods replicas.',
    safeAlternative:
      'Create the table with the persistence it needs; to change it, create a new table, copy in batches and swap names in a later migration.',
    examples: {
      failing: 'ALTER TABLE page_views SET LOGGED;',
      passing: 'CREATE UNLOGGED TABLE page_views_staging (id bigint PRIMARY KEY);',
    },
  }),
  rule({
    id: 'adding-field-with-volatile-default',
    severity: 'error',
    destructive: false,
    summary: 'ADD COLUMN with a volatile DEFAULT (random(), gen_random_uuid(), clock_timestamp()…).',
    explanation:
      'A volatile default forces PostgreSQL to rewrite every row under ACCESS EXCLUSIVE. Constant and stable defaults (now(), literals) are metadata-only since PostgreSQL 11. A function the linter cannot classify is reported as a warning.',
    safeAlternative:
      'Add the column without a default, then ALTER COLUMN … SET DEFAULT (applies to new rows), then backfill existing rows in a backfill step.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();',
      passing:
        'ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();\nALTER TABLE users ADD COLUMN token uuid;',
    },
  }),
  rule({
    id: 'adding-stored-generated-column',
    severity: 'error',
    destructive: false,
    summary: 'ADD COLUMN … GENERATED ALWAYS AS (…) STORED.',
    explanation: 'A stored generated column is computed for every row in a table rewrite under ACCESS EXCLUSIVE.',
    safeAlternative:
      'Add a plain column, keep it filled with a trigger (or in the app), backfill existing rows in a backfill step.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN email_lower text GENERATED ALWAYS AS (lower(email)) STORED;',
      passing: 'ALTER TABLE users ADD COLUMN email_lower text;',
    },
  }),
  rule({
    id: 'adding-auto-increment-column',
    severity: 'error',
    destructive: false,
    summary: 'ADD COLUMN of type serial/bigserial or GENERATED … AS IDENTITY on an existing table.',
    explanation:
      'Every existing row needs a value from the sequence, so the table is rewritten under ACCESS EXCLUSIVE.',
    safeAlternative:
      'Add a nullable bigint column, set its default to nextval() of a new sequence, backfill old rows in a backfill step, then add NOT NULL through a validated CHECK.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN seq bigserial;',
      passing: 'CREATE TABLE audit_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);',
    },
  }),
  rule({
    id: 'changing-column-type',
    severity: 'error',
    destructive: false,
    summary: 'ALTER COLUMN … TYPE.',
    explanation:
      'Most type changes rewrite the table and all its indexes under ACCESS EXCLUSIVE, and old application versions may not read the new type. A few are metadata-only (varchar→text, raising a varchar limit); suppress with a reason for those.',
    safeAlternative:
      'Expand/contract: add a column of the new type, dual-write it (trigger or app), backfill, move reads, then drop the old column in a contract migration.',
    examples: {
      failing: 'ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12, 2);',
      passing: 'ALTER TABLE orders ADD COLUMN amount_numeric numeric(12, 2);',
    },
  }),
  rule({
    id: 'setting-not-null-without-check',
    severity: 'error',
    destructive: false,
    summary: 'ALTER COLUMN … SET NOT NULL without a validated CHECK (col IS NOT NULL).',
    explanation:
      'SET NOT NULL scans the whole table under ACCESS EXCLUSIVE to prove there is no NULL. With a validated CHECK constraint PostgreSQL 12+ skips the scan.',
    safeAlternative:
      'ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; then, in a later migration, VALIDATE CONSTRAINT c; then SET NOT NULL and DROP CONSTRAINT c.',
    examples: {
      failing: 'ALTER TABLE users ALTER COLUMN email SET NOT NULL;',
      passing:
        'ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;\n-- gantry:allow validating-in-same-transaction example only\nALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;',
    },
  }),
  rule({
    id: 'adding-foreign-key-without-not-valid',
    severity: 'error',
    destructive: false,
    summary: 'FOREIGN KEY added and validated at once.',
    explanation:
      'Validating a foreign key scans the table while holding SHARE ROW EXCLUSIVE on both tables: writes to the parent and the child wait.',
    safeAlternative: 'ADD CONSTRAINT … FOREIGN KEY … NOT VALID; then VALIDATE CONSTRAINT in a separate migration.',
    examples: {
      failing: 'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);',
      passing:
        'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;',
    },
  }),
  rule({
    id: 'adding-check-without-not-valid',
    severity: 'error',
    destructive: false,
    summary: 'CHECK constraint added and validated at once.',
    explanation: 'Adding a CHECK scans every row under ACCESS EXCLUSIVE: reads and writes wait.',
    safeAlternative: 'ADD CONSTRAINT … CHECK (…) NOT VALID; then VALIDATE CONSTRAINT in a separate migration.',
    examples: {
      failing: 'ALTER TABLE orders ADD CONSTRAINT amount_positive CHECK (amount > 0);',
      passing: 'ALTER TABLE orders ADD CONSTRAINT amount_positive CHECK (amount > 0) NOT VALID;',
    },
  }),
  rule({
    id: 'validating-in-same-transaction',
    severity: 'warning',
    destructive: false,
    summary: 'A NOT VALID constraint validated in the same transaction, or validation after other DDL.',
    explanation:
      'VALIDATE CONSTRAINT only takes SHARE UPDATE EXCLUSIVE, but inside the transaction of the ADD (ACCESS EXCLUSIVE) or other DDL the stronger lock is held for the whole scan.',
    safeAlternative: 'Put VALIDATE CONSTRAINT in its own migration.',
    examples: {
      failing:
        'ALTER TABLE orders ADD CONSTRAINT amount_positive CHECK (amount > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT amount_positive;',
      passing: 'ALTER TABLE orders VALIDATE CONSTRAINT amount_positive;',
    },
  }),
  rule({
    id: 'adding-unique-constraint',
    severity: 'error',
    destructive: false,
    summary: 'UNIQUE constraint that builds its index under lock.',
    explanation:
      'ADD CONSTRAINT … UNIQUE builds the index while holding ACCESS EXCLUSIVE: the table is blocked for the build.',
    safeAlternative:
      'CREATE UNIQUE INDEX CONCURRENTLY in one migration, then ADD CONSTRAINT … UNIQUE USING INDEX in the next.',
    examples: {
      failing: 'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);',
      passing: 'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;',
    },
  }),
  rule({
    id: 'adding-primary-key',
    severity: 'error',
    destructive: false,
    summary: 'ADD PRIMARY KEY that builds its index under lock.',
    explanation:
      'Adding a primary key builds a unique index and checks NOT NULL on every row while holding ACCESS EXCLUSIVE.',
    safeAlternative:
      'Validated CHECK (col IS NOT NULL), SET NOT NULL, CREATE UNIQUE INDEX CONCURRENTLY, then ADD PRIMARY KEY USING INDEX.',
    examples: {
      failing: 'ALTER TABLE legacy ADD PRIMARY KEY (id);',
      passing: 'ALTER TABLE legacy ADD CONSTRAINT legacy_pkey PRIMARY KEY USING INDEX legacy_id_idx;',
    },
  }),
  rule({
    id: 'adding-exclusion-constraint',
    severity: 'error',
    destructive: false,
    summary: 'ADD CONSTRAINT … EXCLUDE.',
    explanation: 'An exclusion constraint builds its index under ACCESS EXCLUSIVE and cannot be added NOT VALID.',
    safeAlternative: 'Create the constraint on a new table and move the data with a backfill step.',
    examples: {
      failing: 'ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);',
      passing:
        'CREATE TABLE bookings_v2 (room int, during tstzrange, EXCLUDE USING gist (room WITH =, during WITH &&));',
    },
  }),
  rule({
    id: 'domain-with-constraint',
    severity: 'warning',
    destructive: false,
    summary: 'CREATE DOMAIN with a CHECK, or ALTER DOMAIN … ADD CONSTRAINT.',
    explanation:
      'Adding a constraint to a domain re-checks every column that uses it, table by table, under lock; coercing a column to a constrained domain rewrites it.',
    safeAlternative: 'Put NOT VALID CHECK constraints on the columns instead.',
    examples: {
      failing: 'CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);',
      passing: 'CREATE DOMAIN label AS text;',
    },
  }),
  rule({
    id: 'create-trigger-lock',
    severity: 'warning',
    destructive: false,
    summary: 'CREATE TRIGGER on an existing table.',
    explanation:
      'CREATE TRIGGER takes SHARE ROW EXCLUSIVE: writes wait while it queues behind long transactions, and the trigger then runs on every write.',
    safeAlternative:
      'Fine for dual-write triggers with the runner’s lock_timeout and retries; keep the trigger function cheap and suppress with a reason.',
    examples: {
      failing: 'CREATE TRIGGER users_sync BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_sync();',
      passing:
        '-- gantry:allow create-trigger-lock dual-write trigger, runner lock_timeout applies\nCREATE TRIGGER users_sync BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_sync();',
    },
  }),
  rule({
    id: 'require-lock-timeout',
    severity: 'error',
    destructive: false,
    summary: 'A statement that blocks traffic runs without lock_timeout.',
    explanation:
      'A DDL statement waiting for its lock sits in the lock queue and blocks every later query on the table, even plain SELECTs, until it gets the lock. gantry-migrate sets lock_timeout on every session; this fires when a file turns it off or when linting for another runner.',
    safeAlternative:
      "Keep the runner's lock_timeout (default 500 ms, retried with backoff), or SET lock_timeout = '1s' first.",
    examples: {
      failing: 'SET lock_timeout = 0;\nALTER TABLE users ADD COLUMN nickname text;',
      passing: "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN nickname text;",
    },
  }),
  rule({
    id: 'require-statement-timeout',
    severity: 'warning',
    destructive: false,
    summary: 'A statement that blocks traffic runs without statement_timeout.',
    explanation: 'A runaway migration statement holds its lock for as long as it runs.',
    safeAlternative: "Keep the runner's statement_timeout, or SET statement_timeout = '5s' first.",
    examples: {
      failing: 'SET statement_timeout = 0;\nALTER TABLE users ADD COLUMN nickname text;',
      passing: "SET statement_timeout = '5s';\nALTER TABLE users ADD COLUMN nickname text;",
    },
  }),
  rule({
    id: 'ban-drop-column',
    severity: 'error',
    destructive: true,
    summary: 'DROP COLUMN outside a contract migration.',
    explanation:
      'Old application versions still running during the rollout read and write the column and fail; the data is gone for a rollback.',
    safeAlternative: 'Stop using the column in the app, deploy, then drop it in a contract migration.',
    examples: {
      failing: 'ALTER TABLE users DROP COLUMN nickname;',
      passing: '-- gantry:phase contract\nALTER TABLE users DROP COLUMN nickname;',
    },
  }),
  rule({
    id: 'ban-drop-table',
    severity: 'error',
    destructive: true,
    summary: 'DROP TABLE outside a contract migration.',
    explanation: 'Old application versions still use the table; the data cannot come back for a rollback.',
    safeAlternative: 'Stop using the table, deploy, then drop it in a contract migration (or rename it aside first).',
    examples: {
      failing: 'DROP TABLE legacy_sessions;',
      passing: '-- gantry:phase contract\nDROP TABLE legacy_sessions;',
    },
  }),
  rule({
    id: 'ban-drop-schema-or-database',
    severity: 'error',
    destructive: true,
    summary: 'DROP SCHEMA or DROP DATABASE outside a contract migration.',
    explanation: 'Everything inside is lost and every client using it fails.',
    safeAlternative: 'Drop it in a contract migration once nothing uses it.',
    examples: {
      failing: 'DROP SCHEMA reporting CASCADE;',
      passing: '-- gantry:phase contract\nDROP SCHEMA reporting CASCADE;',
    },
  }),
  rule({
    id: 'ban-drop-object',
    severity: 'error',
    destructive: true,
    summary:
      'DROP VIEW, MATERIALIZED VIEW, FUNCTION, PROCEDURE, TYPE, DOMAIN or SEQUENCE outside a contract migration.',
    explanation:
      'Old application versions still running during the rollout query the view, call the function, cast to the type or draw from the sequence, and fail the moment the drop commits. Dropping and re-creating the object in the same transaction is fine.',
    safeAlternative:
      'Stop using the object in the app, deploy, then drop it in a contract migration (or replace it in place: CREATE OR REPLACE, or DROP and CREATE in one transactional migration).',
    examples: {
      failing: 'DROP FUNCTION order_total(bigint);',
      passing: '-- gantry:phase contract\nDROP FUNCTION order_total(bigint);',
    },
  }),
  rule({
    id: 'renaming-column',
    severity: 'error',
    destructive: true,
    summary: 'RENAME COLUMN outside a contract migration.',
    explanation: 'Old application versions still use the old name and fail the moment the rename commits.',
    safeAlternative:
      'Add the new column, dual-write, backfill, switch reads, then drop the old column in a contract migration.',
    examples: {
      failing: 'ALTER TABLE users RENAME COLUMN name TO full_name;',
      passing: 'ALTER TABLE users ADD COLUMN full_name text;',
    },
  }),
  rule({
    id: 'renaming-table',
    severity: 'error',
    destructive: true,
    summary: 'RENAME TABLE (or schema) outside a contract migration.',
    explanation: 'Old application versions still use the old name and fail the moment the rename commits.',
    safeAlternative:
      'Rename, then CREATE VIEW old_name AS SELECT * FROM new_name in the same migration; drop the view in a contract migration.',
    examples: {
      failing: 'ALTER TABLE users RENAME TO accounts;',
      passing: '-- gantry:phase contract\nALTER TABLE users RENAME TO accounts;',
    },
  }),
  rule({
    id: 'renaming-enum-value',
    severity: 'error',
    destructive: true,
    summary: 'ALTER TYPE … RENAME VALUE outside a contract migration.',
    explanation: 'Old application versions keep writing the old label and fail.',
    safeAlternative: 'Add the new value, make the app accept both, backfill, then remove the old one.',
    examples: {
      failing: "ALTER TYPE order_status RENAME VALUE 'sent' TO 'shipped';",
      passing: "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'shipped' AFTER 'sent';",
    },
  }),
  rule({
    id: 'require-enum-value-ordering',
    severity: 'warning',
    destructive: false,
    summary: 'ALTER TYPE … ADD VALUE without BEFORE/AFTER.',
    explanation: 'The value lands at the end of the enum, which changes what < and ORDER BY mean for it.',
    safeAlternative: "ALTER TYPE … ADD VALUE 'x' BEFORE/AFTER 'y', or use text with a CHECK.",
    examples: {
      failing: "ALTER TYPE order_status ADD VALUE 'refunded';",
      passing: "ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'delivered';",
    },
  }),
  rule({
    id: 'ban-drop-not-null',
    severity: 'warning',
    destructive: true,
    summary: 'DROP NOT NULL outside a contract migration.',
    explanation: 'Old application versions (and PL/pgSQL) may not expect NULL in the column.',
    safeAlternative: 'Write a sentinel value, or drop NOT NULL in a contract migration once no old version runs.',
    examples: {
      failing: 'ALTER TABLE users ALTER COLUMN email DROP NOT NULL;',
      passing: '-- gantry:phase contract\nALTER TABLE users ALTER COLUMN email DROP NOT NULL;',
    },
  }),
  rule({
    id: 'ban-drop-constraint',
    severity: 'warning',
    destructive: true,
    summary: 'DROP CONSTRAINT outside a contract migration.',
    explanation:
      'Integrity that old application versions rely on is silently lost, and the drop takes ACCESS EXCLUSIVE.',
    safeAlternative: 'Drop constraints in a contract migration, deliberately.',
    examples: {
      failing: 'ALTER TABLE orders DROP CONSTRAINT orders_user_fk;',
      passing: '-- gantry:phase contract\nALTER TABLE orders DROP CONSTRAINT orders_user_fk;',
    },
  }),
  rule({
    id: 'ban-truncate',
    severity: 'error',
    destructive: true,
    summary: 'TRUNCATE outside a contract migration.',
    explanation: 'Deletes every row under ACCESS EXCLUSIVE; old versions lose their data mid-rollout.',
    safeAlternative: 'Delete in a backfill step, or truncate in a contract migration.',
    examples: {
      failing: 'TRUNCATE sessions;',
      passing: '-- gantry:phase contract\nTRUNCATE sessions;',
    },
  }),
  rule({
    id: 'ban-truncate-cascade',
    severity: 'error',
    destructive: false,
    summary: 'TRUNCATE … CASCADE.',
    explanation: 'CASCADE also empties every table that references this one through a foreign key, however far.',
    safeAlternative: 'List the tables to truncate explicitly.',
    examples: {
      failing: '-- gantry:phase contract\nTRUNCATE sessions CASCADE;',
      passing: '-- gantry:phase contract\nTRUNCATE sessions, session_events;',
      phase: 'contract',
    },
  }),
  rule({
    id: 'adding-required-field',
    severity: 'error',
    destructive: false,
    summary: 'ADD COLUMN … NOT NULL without a DEFAULT on an existing table.',
    explanation:
      'It fails on a non-empty table, and once added, inserts from old application versions (which do not know the column) fail.',
    safeAlternative:
      'Add the column nullable or with a constant default; enforce NOT NULL later through a validated CHECK.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;',
      passing: 'ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL DEFAULT 0;',
    },
  }),
  rule({
    id: 'prefer-jsonb',
    severity: 'warning',
    destructive: false,
    summary: 'A json column.',
    explanation: 'json has no equality operator, so SELECT DISTINCT and UNION over the table start failing.',
    safeAlternative: 'Use jsonb.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN settings json;',
      passing: 'ALTER TABLE users ADD COLUMN settings jsonb;',
    },
  }),
  rule({
    id: 'prefer-bigint-key',
    severity: 'warning',
    destructive: false,
    summary: 'An int/serial primary key or identity column.',
    explanation: 'int keys run out at 2.1 billion, and widening them later is a full table rewrite.',
    safeAlternative: 'bigint GENERATED ALWAYS AS IDENTITY.',
    examples: {
      failing: 'CREATE TABLE notes (id serial PRIMARY KEY, body text);',
      passing: 'CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);',
    },
  }),
  rule({
    id: 'prefer-text-field',
    severity: 'warning',
    destructive: false,
    summary: 'A varchar(n) column.',
    explanation: 'Changing the limit later can need ACCESS EXCLUSIVE; text performs the same.',
    safeAlternative: 'text with a CHECK (length(col) <= n) NOT VALID.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN nickname varchar(40);',
      passing: 'ALTER TABLE users ADD COLUMN nickname text;',
    },
  }),
  rule({
    id: 'prefer-timestamptz',
    severity: 'warning',
    destructive: false,
    summary: 'A timestamp without time zone column.',
    explanation: 'Values are stored without their offset; comparisons across time zones and DST changes go wrong.',
    safeAlternative: 'timestamptz.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN last_seen timestamp;',
      passing: 'ALTER TABLE users ADD COLUMN last_seen timestamptz;',
    },
  }),
  rule({
    id: 'ban-char-field',
    severity: 'warning',
    destructive: false,
    summary: 'A char(n) column.',
    explanation: 'char pads with spaces and wastes space; comparisons surprise.',
    safeAlternative: 'text (with a CHECK on the length when needed).',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN country char(2);',
      passing: 'ALTER TABLE users ADD COLUMN country text;',
    },
  }),
  rule({
    id: 'prefer-robust-statements',
    severity: 'warning',
    destructive: false,
    summary: 'A statement run outside a transaction without IF [NOT] EXISTS.',
    explanation:
      'Statements outside a transaction apply one by one; when a later one fails, a re-run meets the objects the first run created.',
    safeAlternative: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS / DROP INDEX CONCURRENTLY IF EXISTS.',
    examples: {
      failing: 'CREATE INDEX CONCURRENTLY users_email_idx ON users (email);',
      passing: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);',
      nonTransactional: true,
    },
  }),
  rule({
    id: 'mixed-non-transactional-file',
    severity: 'warning',
    destructive: false,
    summary: 'A statement that cannot run in a transaction shares its file with other statements.',
    explanation:
      'Such a file runs statement by statement without a transaction; a failure leaves it half applied (the runner records and resumes it, but review is harder).',
    safeAlternative: 'Give CREATE/DROP INDEX CONCURRENTLY its own migration file.',
    examples: {
      failing:
        'ALTER TABLE users ADD COLUMN email_domain text;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_domain_idx ON users (email_domain);',
      passing: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS users_domain_idx ON users (email_domain);',
      nonTransactional: true,
    },
  }),
  rule({
    id: 'ban-explicit-transaction',
    severity: 'error',
    destructive: false,
    summary: 'BEGIN, COMMIT, ROLLBACK or SAVEPOINT in a migration.',
    explanation:
      'The runner wraps each migration in its own transaction and records it in the same one; explicit transaction control breaks that atomicity.',
    safeAlternative:
      'Remove it; use one file per transaction, and -- gantry:no-transaction for statements that cannot run in one.',
    examples: {
      failing: 'BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;',
      passing: 'ALTER TABLE users ADD COLUMN nickname text;',
    },
  }),
  rule({
    id: 'unbatched-data-change',
    severity: 'warning',
    destructive: false,
    summary: 'UPDATE or DELETE of an existing table inside a migration.',
    explanation:
      'One big UPDATE locks every row it touches until the migration commits, bloats the table and bursts WAL (replicas lag).',
    safeAlternative:
      'Write a backfill step (V<version>__<description>.ts exporting defineBackfill()): batched, throttled, resumable.',
    examples: {
      failing: 'UPDATE users SET email_lower = lower(email);',
      passing: "INSERT INTO settings (key, value) VALUES ('theme', 'dark');",
    },
  }),
  rule({
    id: 'combine-alter-table',
    severity: 'warning',
    destructive: false,
    summary: 'Several ALTER TABLE statements on one table in one migration.',
    explanation: 'Each statement queues for the lock again: more windows in which traffic waits behind the migration.',
    safeAlternative: 'Combine the sub-commands into one ALTER TABLE.',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;',
      passing: 'ALTER TABLE users ADD COLUMN a text, ADD COLUMN b text;',
    },
  }),
  rule({
    id: 'work-after-access-exclusive',
    severity: 'warning',
    destructive: false,
    summary: 'Slow work in the same transaction after taking ACCESS EXCLUSIVE.',
    explanation:
      'The exclusive lock is held until the migration commits, so a following rewrite, index build or data change keeps the table blocked.',
    safeAlternative: 'Move the slow statement into its own migration, or do the short exclusive change last.',
    examples: {
      failing:
        'ALTER TABLE users ADD COLUMN nickname text;\n-- gantry:allow require-concurrent-index-creation example\nCREATE INDEX users_lower_email_idx ON accounts (lower(email));',
      passing:
        'CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\nCREATE INDEX accounts_email_idx ON accounts (email);',
    },
  }),
  rule({
    id: 'identifier-too-long',
    severity: 'error',
    destructive: false,
    summary: 'An identifier longer than 63 bytes.',
    explanation: 'PostgreSQL silently truncates it, so later migrations that use the full name fail.',
    safeAlternative: 'Use a name of at most 63 bytes.',
    examples: {
      failing: `ALTER TABLE users ADD COLUMN ${'x'.repeat(64)} text;`,
      passing: `ALTER TABLE users ADD COLUMN ${'x'.repeat(63)} text;`,
    },
  }),
  rule({
    id: 'refresh-materialized-view-concurrently',
    severity: 'warning',
    destructive: false,
    summary: 'REFRESH MATERIALIZED VIEW without CONCURRENTLY.',
    explanation: 'A plain refresh holds ACCESS EXCLUSIVE on the view: readers wait for the whole refresh.',
    safeAlternative: 'REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on the view).',
    examples: {
      failing: 'REFRESH MATERIALIZED VIEW daily_totals;',
      passing: 'REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;',
    },
  }),
  rule({
    id: 'ban-lock-table',
    severity: 'error',
    destructive: false,
    summary: 'An explicit LOCK TABLE.',
    explanation: 'An explicit lock blocks traffic for the rest of the migration’s transaction.',
    safeAlternative: 'Let each statement take the lock it needs, briefly, under lock_timeout.',
    examples: {
      failing: 'LOCK TABLE users IN ACCESS EXCLUSIVE MODE;',
      passing: 'ALTER TABLE users ADD COLUMN nickname text;',
    },
  }),
  rule({
    id: 'opaque-procedural-code',
    severity: 'error',
    destructive: false,
    summary: 'A DO block or CALL: code the linter cannot see (an error in an expand migration, a warning elsewhere).',
    explanation:
      'Statements inside DO $$ … $$ or a procedure, especially SQL built at run time with EXECUTE, are invisible to every rule: a DROP COLUMN, a table rewrite or an unbatched UPDATE passes lint unnoticed. An expand migration runs while the old version serves traffic, so there it must be reviewable.',
    safeAlternative:
      'Write the statements as plain SQL (IF NOT EXISTS / IF EXISTS instead of DO-block guards) so each one is linted; if the block is needed, say why with -- gantry:allow opaque-procedural-code <reason>.',
    examples: {
      failing:
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN EXECUTE 'CREATE TYPE mood AS ENUM (''ok'')'; END IF; END $$;",
      passing: 'ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text;',
    },
  }),
  rule({
    id: 'missing-phase',
    severity: 'warning',
    destructive: false,
    summary: 'A SQL migration without a -- gantry:phase header.',
    explanation: 'Without a header the file counts as expand; say so explicitly so reviewers see the intent.',
    safeAlternative: 'Start the file with -- gantry:phase expand (or contract).',
    examples: {
      failing: 'ALTER TABLE users ADD COLUMN nickname text;',
      passing: '-- gantry:phase expand\nALTER TABLE users ADD COLUMN nickname text;',
    },
  }),
  rule({
    id: 'allow-needs-reason',
    severity: 'error',
    destructive: false,
    summary: 'A -- gantry:allow suppression without a reason.',
    explanation: 'Suppressions are reviewed later; the reason is the only record of why the risk was accepted.',
    safeAlternative: '-- gantry:allow <rule> <why this is safe here>.',
    examples: {
      failing: '-- gantry:allow ban-drop-column\nALTER TABLE users DROP COLUMN nickname;',
      passing:
        '-- gantry:allow ban-drop-column column was never read by any released version\nALTER TABLE users DROP COLUMN nickname;',
    },
  }),
  rule({
    id: 'unknown-allow-rule',
    severity: 'error',
    destructive: false,
    summary: 'A -- gantry:allow naming a rule that does not exist.',
    explanation: 'A typo in a rule id suppresses nothing and hides the intent.',
    safeAlternative: 'Use an id from `gantry-migrate lint --rules`.',
    examples: {
      failing: '-- gantry:allow ban-drop-colum typo\nALTER TABLE users ADD COLUMN nickname text;',
      passing: 'ALTER TABLE users ADD COLUMN nickname text;',
    },
  }),
  rule({
    id: 'unused-allow',
    severity: 'warning',
    destructive: false,
    summary: 'A -- gantry:allow that suppressed nothing.',
    explanation: 'Stale suppressions hide future findings on the next statement.',
    safeAlternative: 'Remove it, or place it right above the statement it is meant for.',
    examples: {
      failing: '-- gantry:allow ban-drop-column not needed\nALTER TABLE users ADD COLUMN nickname text;',
      passing: '-- gantry:allow ban-drop-column old column unused since 2.0\nALTER TABLE users DROP COLUMN nickname;',
    },
  }),
]);

/** Looks a rule up by id. */
export function lintRule(id: string): LintRule | undefined {
  return LINT_RULES.find((candidate) => candidate.id === id);
}
