// Backfill: copy `customer_id` into `customer_key` for the rows written before the expand, in batches on the
// primary key, while both versions keep writing. Its verify query (no row where the two differ) runs at the end
// and again right before the contract.
import { defineBackfill } from '@gantry/migrations';

export default defineBackfill({ table: 'orders', set: { customer_key: 'customer_id' }, batchSize: 500 });
