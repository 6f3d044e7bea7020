-- The whole schema of the contract: accounts, organizations, trials and their
-- history, API keys, enterprises, idempotency, the outbox and payment events.
-- Timestamps come from the application's clock, never from now(), so that the
-- lifecycle can be tested with a stubbed clock.

-- +goose Up
CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id      text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
    username       text NOT NULL,
    email          text NOT NULL,
    name           text NOT NULL DEFAULT '',
    -- NULL: the user has no password and cannot log in with one.
    password_hash  text,
    is_admin       boolean NOT NULL DEFAULT false,
    email_verified boolean NOT NULL DEFAULT false,
    plan           text NOT NULL DEFAULT 'free'
                   CHECK (plan IN ('free', 'professional', 'enterprise')),
    plan_state     text NOT NULL DEFAULT 'active'
                   CHECK (plan_state IN ('active', 'pending_payment')),
    -- Bumped to revoke every JWT issued to the user.
    token_version  integer NOT NULL DEFAULT 0,
    job_title      text,
    company_name   text,
    activation_code_hash       bytea,
    activation_code_expires_at timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT users_public_id_format CHECK (public_id ~ '^[0-9a-f]{32}$')
);
CREATE UNIQUE INDEX users_public_id_key ON users (public_id);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- Unpaid Professional sign-ups are swept by creation date.
CREATE INDEX users_pending_payment_idx ON users (created_at) WHERE plan_state = 'pending_payment';

CREATE TABLE organizations (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id           text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
    name                text NOT NULL,
    is_trial            boolean NOT NULL DEFAULT false,
    -- False once a trial organization has expired and lost enterprise features.
    enterprise_features boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL,
    -- Soft deletion: hidden and access revoked, data kept until purge_at.
    deleted_at          timestamptz,
    -- When a soft-deleted organization is erased for good; NULL: never.
    purge_at            timestamptz,
    -- The River job that will purge it.
    purge_job_id        bigint,
    CONSTRAINT organizations_public_id_format CHECK (public_id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT organizations_purge_needs_delete CHECK (purge_at IS NULL OR deleted_at IS NOT NULL)
);
CREATE UNIQUE INDEX organizations_public_id_key ON organizations (public_id);
CREATE INDEX organizations_purge_at_idx ON organizations (purge_at) WHERE purge_at IS NOT NULL;

CREATE TABLE organization_members (
    organization_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('admin', 'member')),
    created_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user_id_idx ON organization_members (user_id);

CREATE TABLE projects (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A project belongs to an organization or, for personal plans, to a user.
    organization_id bigint REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id   bigint REFERENCES users (id) ON DELETE CASCADE,
    name            text NOT NULL,
    created_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    CONSTRAINT projects_has_owner CHECK (organization_id IS NOT NULL OR owner_user_id IS NOT NULL)
);
CREATE INDEX projects_organization_id_idx ON projects (organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX projects_owner_user_id_idx ON projects (owner_user_id) WHERE owner_user_id IS NOT NULL;

CREATE TABLE trials (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Purging the trial organization erases the trial with it.
    organization_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- A self-service trial is one the user started; each user gets one.
    self_service    boolean NOT NULL,
    created_at      timestamptz NOT NULL,
    expiration_date timestamptz NOT NULL,
    notes           text,
    expired_date    timestamptz,
    deleted_date    timestamptz,
    upgraded_date   timestamptz,
    -- When an expired trial's grace period ends and Delete is due: expiry
    -- plus grace_period, or restore time plus grace_period after a restore.
    grace_ends_at   timestamptz,
    -- Bumped by every reschedule; jobs carry it so a stale job does nothing.
    schedule_gen    bigint NOT NULL DEFAULT 1,
    -- River job ids of the current schedule: the next transition (Expire or
    -- Delete) and the reminders. Reconciling and cancelling look jobs up by
    -- these ids instead of searching river_job's args.
    transition_job_id bigint,
    reminder_job_ids  bigint[] NOT NULL DEFAULT '{}',
    -- Derived from the dates so it can never disagree with them.
    state           text NOT NULL GENERATED ALWAYS AS (
                        CASE
                            WHEN upgraded_date IS NOT NULL THEN 'upgraded'
                            WHEN deleted_date IS NOT NULL THEN 'deleted'
                            WHEN expired_date IS NOT NULL THEN 'expired'
                            ELSE 'active'
                        END) STORED,
    -- Descriptive fields of the request, kept for sales follow-up.
    organization_name               text,
    use_case                        text,
    user_has_ml_models_in_production text
        CHECK (user_has_ml_models_in_production IN ('yes', 'no', 'no, but we will soon')),
    company_name                    text,
    company_size                    text,
    country                         text,
    state_or_province               text,
    job_title                       text,
    utm_params                      jsonb
);
CREATE UNIQUE INDEX trials_one_self_service_per_user ON trials (user_id) WHERE self_service;
CREATE INDEX trials_user_id_idx ON trials (user_id, id DESC);
CREATE INDEX trials_organization_id_idx ON trials (organization_id);
-- Reconciliation and state counts walk trials by state and due date.
CREATE INDEX trials_state_expiration_idx ON trials (state, expiration_date);
CREATE INDEX trials_grace_ends_at_idx ON trials (grace_ends_at) WHERE state = 'expired';

-- The audit trail of every trial. No foreign key: a purged trial's row is
-- gone, its history (ending in trial.purged) stays.
CREATE TABLE trial_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id bigint NOT NULL,
    kind     text NOT NULL CHECK (kind IN (
                 'trial.created', 'trial.will_end', 'trial.expired', 'trial.extended',
                 'trial.shortened', 'trial.deleted', 'trial.restored', 'trial.purged',
                 'trial.upgraded', 'trial.extension_requested')),
    at       timestamptz NOT NULL,
    -- 'system', or 'user:<id>' / 'admin:<id>'.
    actor    text NOT NULL,
    -- 'job:<river job id>' or 'request:<request id>'.
    cause    text NOT NULL,
    data     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX trial_events_trial_id_idx ON trial_events (trial_id, id);

CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    -- SHA-256 of the whole key; the key itself is shown once and never stored.
    key_hash     bytea NOT NULL,
    -- The first characters of the key, to recognise it in listings.
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE enterprises (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id       text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
    organization_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id),
    third_party_identifiers jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at      timestamptz NOT NULL,
    CONSTRAINT enterprises_public_id_format CHECK (public_id ~ '^[0-9a-f]{32}$')
);
CREATE UNIQUE INDEX enterprises_public_id_key ON enterprises (public_id);
CREATE INDEX enterprises_organization_id_idx ON enterprises (organization_id);

CREATE TABLE idempotency_records (
    organization_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the canonical decoded request body.
    request_sha256  bytea NOT NULL,
    response_status integer NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (organization_id, key)
);

CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Receivers deduplicate on it.
    event_id     text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
    channel      text NOT NULL CHECK (channel IN ('webhook', 'email')),
    destination  text NOT NULL,
    trial_id     bigint REFERENCES trials (id) ON DELETE SET NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    delivered_at timestamptz,
    failed_at    timestamptz
);
CREATE UNIQUE INDEX outbox_event_id_destination_key ON outbox (event_id, destination);
CREATE INDEX outbox_undelivered_idx ON outbox (created_at) WHERE delivered_at IS NULL;

CREATE TABLE payment_events (
    -- The payment provider's event id: a repeated event is a no-op.
    id          text PRIMARY KEY,
    type        text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE payment_events;
DROP TABLE outbox;
DROP TABLE idempotency_records;
DROP TABLE enterprises;
DROP TABLE api_keys;
DROP TABLE trial_events;
DROP TABLE trials;
DROP TABLE projects;
DROP TABLE organization_members;
DROP TABLE organizations;
DROP TABLE users;
