-- The operator console's trial list: sorted by expiration date and paged
-- by the key (expiration_date, id), and searched by organization name
-- without case. Users are searched by lower(email) and lower(username),
-- which 00001's unique indexes already serve, and a trial by its id.
-- The state-filtered list walks trials_state_expiration_idx.
--
-- A database already holding millions of trials can build these first,
-- without blocking writes, with CREATE INDEX CONCURRENTLY under the same
-- names; IF NOT EXISTS then leaves them be.

-- +goose Up
CREATE INDEX IF NOT EXISTS trials_expiration_id_idx ON trials (expiration_date, id);
CREATE INDEX IF NOT EXISTS organizations_name_lower_idx ON organizations (lower(name));

-- +goose Down
DROP INDEX IF EXISTS organizations_name_lower_idx;
DROP INDEX IF EXISTS trials_expiration_id_idx;
