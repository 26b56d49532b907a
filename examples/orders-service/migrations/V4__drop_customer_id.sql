-- gantry:phase contract
-- Contract: once no instance of version 1 is alive (the gate checks heartbeats and connections), the old column
-- and the sync trigger go. Version 2 must be at stage `complete` of its migration flag by then (it no longer
-- reads or writes customer_id).
DROP TRIGGER orders_customer_key_sync ON orders;
DROP FUNCTION orders_customer_key_sync();
ALTER TABLE orders DROP COLUMN customer_id;
