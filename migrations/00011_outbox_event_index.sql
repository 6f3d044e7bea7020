-- A trial's page in the console lists its events' webhook deliveries by
-- event id. No index covered event_id alone (the unique ones are partial,
-- on (event_id, endpoint_id) and (event_id, destination)), so each view
-- scanned the whole outbox: at 0.5M rows, 206-269 ms against 3 ms. The
-- index is partial, on webhooks, as that list is, and e-mails do not pay
-- for it.
--
-- Delivered messages are now deleted after outbox.delivered_retention, and
-- their attempt log with them (ON DELETE CASCADE): webhook_attempts gets
-- the index on outbox_id that cascade needs to find them, instead of a
-- scan of the attempt log for each message deleted.
--
-- A database already holding a big outbox can build these first, without
-- blocking writes, with CREATE INDEX CONCURRENTLY under the same names; IF
-- NOT EXISTS then leaves them be.

-- +goose Up
CREATE INDEX IF NOT EXISTS outbox_webhook_event_id_idx ON outbox (event_id) WHERE channel = 'webhook';
CREATE INDEX IF NOT EXISTS webhook_attempts_outbox_idx ON webhook_attempts (outbox_id);

-- +goose Down
DROP INDEX IF EXISTS webhook_attempts_outbox_idx;
DROP INDEX IF EXISTS outbox_webhook_event_id_idx;
