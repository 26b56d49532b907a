// Reading and writing orders. Version 1 knows the customer as `customer_id`. Versions 2 and 3 move it to
// `customer_key` through the migration flag `dual-write-customer-key`: its stage (the toggle's variant) says which
// column is read, which is written first, and whether the other one is compared in the background.
import type { Flags, MigrationFlag, MigrationStage } from '@gantry/flags';
import { createMigrationFlag } from '@gantry/flags';
import type { FlagContext, FlagsLogger } from '@gantry/flags';
import type { Registry } from 'prom-client';
import { CUSTOMER_KEY_MIGRATION } from './config.ts';
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'>;

/** An order as the API returns it. */
export interface Order {
  readonly id: number;
  readonly customer: string;
  readonly item: string;
  readonly quantity: number;
}

/** What a client sends to create an order. */
export interface NewOrder {
  readonly customer: string;
  readonly item: string;
  readonly quantity: number;
}

/** Order storage of one version. */
export interface OrderStore {
  create(order: NewOrder, context: FlagContext): Promise<Order>;
  find(id: number, context: FlagContext): Promise<Order | undefined>;
  /** The migration stage the last request used (`null` for version 1, which has no migration flag). */
  lastStage(): MigrationStage | null;
  /** The migration flag, for its readiness check and shutdown hook (version 2 and 3 only). */
  readonly migration: MigrationFlag<number, Order | undefined, NewOrder, Order> | undefined;
}

interface Row {
  readonly id: string | number;
  readonly customer: string;
  readonly item: string;
  readonly quantity: number;
}

const toOrder = (row: Row | undefined): Order | undefined =>
  row === undefined
    ? undefined
    : { id: Number(row.id), customer: row.customer, item: row.item, quantity: row.quantity };

const must = (order: Order | undefined): Order => {
  if (order === undefined) throw new Error('the write returned no row');
  return order;
};

/** Version 1: `customer_id` only. */
export function createLegacyOrderStore(pool: Queryable): OrderStore {
  return {
    migration: undefined,
    lastStage: () => null,
    async create(order) {
      const { rows } = await pool.query<Row>(
        'INSERT INTO orders (customer_id, item, quantity) VALUES ($1, $2, $3) RETURNING id, customer_id AS customer, item, quantity',
        [order.customer, order.item, order.quantity],
      );
      return must(toOrder(rows[0]));
    },
    async find(id) {
      const { rows } = await pool.query<Row>(
        'SELECT id, customer_id AS customer, item, quantity FROM orders WHERE id = $1',
        [id],
      );
      return toOrder(rows[0]);
    },
  };
}

/**
 * Versions 2 and 3: both columns, driven by the migration flag. A second write updates the row the first one
 * created (the trigger of the expand migration has already copied the value; the update is what a dual-write to a
 * separate store would be, and keeps working when that trigger is gone).
 */
export function createMigratingOrderStore(
  pool: Queryable,
  flags: Flags<typeof CUSTOMER_KEY_MIGRATION>,
  options: { readonly logger: FlagsLogger; readonly registry?: Registry },
): OrderStore {
  const select = (column: 'customer_id' | 'customer_key') =>
    `SELECT id, ${column} AS customer, item, quantity FROM orders WHERE id = $1`;
  const insert = (column: 'customer_id' | 'customer_key') =>
    `INSERT INTO orders (${column}, item, quantity) VALUES ($1, $2, $3) RETURNING id, ${column} AS customer, item, quantity`;
  const update = (column: 'customer_id' | 'customer_key') =>
    `UPDATE orders SET ${column} = $2 WHERE id = $1 AND ${column} IS DISTINCT FROM $2`;
  let stage: MigrationStage | null = null;

  const migration = createMigrationFlag<typeof CUSTOMER_KEY_MIGRATION, number, Order | undefined, NewOrder, Order>(
    flags,
    CUSTOMER_KEY_MIGRATION,
    {
      readOld: async (id: number) => toOrder((await pool.query<Row>(select('customer_id'), [id])).rows[0]),
      readNew: async (id: number) => toOrder((await pool.query<Row>(select('customer_key'), [id])).rows[0]),
      writeOld: async (order: NewOrder, call) => {
        if (call.authoritativeResult === undefined) {
          return must(
            toOrder(
              (await pool.query<Row>(insert('customer_id'), [order.customer, order.item, order.quantity])).rows[0],
            ),
          );
        }
        await pool.query(update('customer_id'), [call.authoritativeResult.id, order.customer]);
        return call.authoritativeResult;
      },
      writeNew: async (order: NewOrder, call) => {
        if (call.authoritativeResult === undefined) {
          return must(
            toOrder(
              (await pool.query<Row>(insert('customer_key'), [order.customer, order.item, order.quantity])).rows[0],
            ),
          );
        }
        await pool.query(update('customer_key'), [call.authoritativeResult.id, order.customer]);
        return call.authoritativeResult;
      },
      // Both sides return the same shape; a mismatch means the columns drifted (a writer that skipped one of them).
      maxConcurrentShadowReads: 2,
      logger: options.logger,
      ...(options.registry === undefined ? {} : { registry: options.registry }),
    },
  );

  return {
    migration,
    lastStage: () => stage,
    async create(order, context) {
      stage = migration.stage(context);
      return migration.write(context, order);
    },
    async find(id, context) {
      stage = migration.stage(context);
      return migration.read(context, id);
    },
  };
}
