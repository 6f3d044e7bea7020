-- The lifecycle e-mails' opt-out: a user who followed the one-click
-- unsubscribe link of a reminder gets no more reminders (the welcome and
-- the e-mails before the expiry). The service messages (the expiry, the
-- warnings before the deletion, the deletion, the upgrade) still reach
-- them: they say what happens to their organization's data.

--
-- A notice e-mail handed to the relay, or failed for good, is recorded in
-- its trial's history: trial.email_sent, trial.email_failed.

-- +goose Up
ALTER TABLE users ADD COLUMN reminders_unsubscribed_at timestamptz;
ALTER TABLE trial_events DROP CONSTRAINT trial_events_kind_check;
ALTER TABLE trial_events ADD CONSTRAINT trial_events_kind_check CHECK (kind IN (
    'trial.created', 'trial.will_end', 'trial.expired', 'trial.extended',
    'trial.shortened', 'trial.deleted', 'trial.restored', 'trial.purged',
    'trial.upgraded', 'trial.extension_requested',
    'trial.email_sent', 'trial.email_failed')) NOT VALID;

-- +goose Down
DELETE FROM trial_events WHERE kind IN ('trial.email_sent', 'trial.email_failed');
ALTER TABLE trial_events DROP CONSTRAINT trial_events_kind_check;
ALTER TABLE trial_events ADD CONSTRAINT trial_events_kind_check CHECK (kind IN (
    'trial.created', 'trial.will_end', 'trial.expired', 'trial.extended',
    'trial.shortened', 'trial.deleted', 'trial.restored', 'trial.purged',
    'trial.upgraded', 'trial.extension_requested')) NOT VALID;
ALTER TABLE users DROP COLUMN reminders_unsubscribed_at;
