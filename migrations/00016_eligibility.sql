-- Trial eligibility: who has had a trial, kept past the trial itself.
--
-- eligibility_history has one row per trial started since this migration
-- (and, once the daemon has backfilled them, per trial before it): a keyed
-- hash of the trial's normalized address (never the address), its company
-- domain and when it started. It has no foreign key: when the trial's
-- organization is purged the row stays, as the tombstone, with the trial's
-- dates and its state at the purge, until eligibility.history_retention
-- after the purge.
--
-- A trial on a test clock is a rehearsal: its row names the clock, it is
-- counted only against the clock's other trials (a rehearsal with a
-- customer's address does not use up their trial), and it goes with the
-- clock.
--
-- eligibility_grants are the admins' overrides: one trial more for an
-- address (by the same keyed hash) or for anyone at a domain, with who granted it,
-- why, and the trial that used it.
--
-- eligibility_domains are the admins' own limits for a company domain.

-- +goose Up
CREATE TABLE eligibility_history (
    trial_id     bigint PRIMARY KEY,
    address_hash bytea NOT NULL,
    domain       text NOT NULL,
    started_at   timestamptz NOT NULL,
    grant_id     bigint,
    test_clock_id bigint REFERENCES test_clocks (id) ON DELETE CASCADE,
    -- Set when the organization is purged: the tombstone's dates.
    expired_at   timestamptz,
    deleted_at   timestamptz,
    purged_at    timestamptz,
    -- The trial's state when it was purged.
    outcome      text
);
CREATE INDEX eligibility_history_address_idx ON eligibility_history (address_hash);
CREATE INDEX eligibility_history_domain_idx ON eligibility_history (domain, started_at);
CREATE INDEX eligibility_history_test_clock_idx ON eligibility_history (test_clock_id) WHERE test_clock_id IS NOT NULL;
CREATE INDEX eligibility_history_purged_idx ON eligibility_history (purged_at) WHERE purged_at IS NOT NULL;

CREATE TABLE eligibility_grants (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A grant to an address has its hash; one to a domain has none. Both
    -- name the company domain.
    address_hash bytea,
    domain       text NOT NULL,
    -- What an admin reads: the masked address, or the domain.
    subject      text NOT NULL,
    note         text NOT NULL,
    granted_by   text NOT NULL,
    granted_at   timestamptz NOT NULL,
    trial_id     bigint,
    used_at      timestamptz
);
CREATE INDEX eligibility_grants_unused_address_idx ON eligibility_grants (address_hash) WHERE used_at IS NULL;
CREATE INDEX eligibility_grants_domain_idx ON eligibility_grants (domain, id);

CREATE TABLE eligibility_domains (
    domain          text PRIMARY KEY,
    -- 0: no limit.
    active_limit    int NOT NULL CHECK (active_limit >= 0),
    trials_limit    int NOT NULL CHECK (trials_limit >= 0),
    note            text NOT NULL,
    set_by          text NOT NULL,
    set_at          timestamptz NOT NULL
);

-- The trials this migration found, which the daemon adds to the history
-- at its next start (it holds the hash key; SQL does not).
CREATE TABLE eligibility_backfill (
    up_to bigint NOT NULL
);
INSERT INTO eligibility_backfill (up_to) SELECT max(id) FROM trials HAVING max(id) IS NOT NULL;

-- +goose Down
DROP TABLE eligibility_backfill;
DROP TABLE eligibility_domains;
DROP TABLE eligibility_grants;
DROP TABLE eligibility_history;
