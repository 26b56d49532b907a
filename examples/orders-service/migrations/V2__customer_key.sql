-- gantry:phase expand
-- Expand: the new column `customer_key` next to the old `customer_id`. Version 1 keeps writing `customer_id` only,
-- version 2 writes through its migration flag (`dual-write-customer-key`), and this trigger keeps the two columns
-- equal whichever version wrote the row, so both versions can run side by side during the rollout.
-- gantry:allow ban-drop-not-null version 2 in stage `complete` writes customer_key only; the trigger fills customer_id
ALTER TABLE orders ADD COLUMN customer_key text, ALTER COLUMN customer_id DROP NOT NULL;
CREATE FUNCTION orders_customer_key_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.customer_key IS NULL THEN NEW.customer_key := NEW.customer_id; END IF;
    IF NEW.customer_id IS NULL THEN NEW.customer_id := NEW.customer_key; END IF;
  ELSIF NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
    NEW.customer_key := NEW.customer_id;
  ELSIF NEW.customer_key IS DISTINCT FROM OLD.customer_key THEN
    NEW.customer_id := NEW.customer_key;
  END IF;
  RETURN NEW;
END $$;
-- gantry:allow create-trigger-lock dual-write trigger; the runner's lock_timeout and retries apply
CREATE TRIGGER orders_customer_key_sync BEFORE INSERT OR UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION orders_customer_key_sync();
