-- The console lists purged trials, whose rows are gone, from the
-- trial.purged events that outlive them, by purge date. Without an index
-- that walk would read the whole history; this one is partial, so the other
-- events do not pay for it.

-- +goose Up
CREATE INDEX IF NOT EXISTS trial_events_purged_idx ON trial_events (at, trial_id) WHERE kind = 'trial.purged';

-- +goose Down
DROP INDEX IF EXISTS trial_events_purged_idx;
