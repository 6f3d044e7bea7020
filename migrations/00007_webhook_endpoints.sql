-- Webhook endpoints become data: an admin adds, changes, disables and
-- removes them at run time, each with its own secret, and every delivery
-- attempt is logged. Endpoints listed in webhooks.endpoints are mirrored
-- here at start (source 'config') and shown read-only.
--
-- Each webhook message in the outbox now belongs to one endpoint; deleting
-- the endpoint deletes its undelivered messages and their log with it.
-- Messages already waiting when this runs get a 'config' endpoint for
-- their URL, which the daemon keeps if webhooks.endpoints still lists it
-- and removes otherwise. They keep the payload they were written with.
--
-- The payload becomes json, not jsonb: what is signed and sent are the
-- bytes trialsd wrote, in its field order, not jsonb's re-rendering. The
-- type change rewrites the outbox table under an exclusive lock.

-- +goose Up
CREATE TABLE webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    -- Event types delivered to it; empty: every type.
    event_types     text[] NOT NULL DEFAULT '{}',
    -- 'api': managed through the admin API; 'config': webhooks.endpoints.
    source          text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'config')),
    -- The signing secret (whsec_...); NULL for config endpoints, which sign
    -- with webhooks.secret. The previous secret signs too until it expires.
    secret          text,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    -- Set by the first failed attempt after a success: an endpoint failing
    -- since longer than webhooks.disable_after is disabled.
    failing_since   timestamptz,
    disabled_at     timestamptz,
    disabled_reason text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CHECK ((source = 'api') = (secret IS NOT NULL))
);
CREATE UNIQUE INDEX webhook_endpoints_config_url_key ON webhook_endpoints (url) WHERE source = 'config';

ALTER TABLE outbox ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE outbox ADD COLUMN endpoint_id bigint REFERENCES webhook_endpoints (id) ON DELETE CASCADE;
INSERT INTO webhook_endpoints (url, source, created_at, updated_at)
    SELECT destination, 'config', min(created_at), min(created_at)
    FROM outbox WHERE channel = 'webhook' AND delivered_at IS NULL GROUP BY destination;
UPDATE outbox o SET endpoint_id = e.id
    FROM webhook_endpoints e
    WHERE o.channel = 'webhook' AND o.delivered_at IS NULL AND e.source = 'config' AND e.url = o.destination;
-- An event goes once to each endpoint (two endpoints may share a URL); an
-- e-mail once to each address.
DROP INDEX outbox_event_id_destination_key;
CREATE UNIQUE INDEX outbox_event_id_endpoint_key ON outbox (event_id, endpoint_id) WHERE endpoint_id IS NOT NULL;
CREATE UNIQUE INDEX outbox_event_id_destination_key ON outbox (event_id, destination) WHERE endpoint_id IS NULL;
CREATE INDEX outbox_endpoint_failed_idx ON outbox (endpoint_id, failed_at) WHERE failed_at IS NOT NULL;

CREATE TABLE webhook_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id    text NOT NULL,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL,
    -- NULL: no answer (refused, timed out, blocked address).
    status_code integer,
    duration_ms integer NOT NULL,
    error       text
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP INDEX outbox_endpoint_failed_idx;
DROP INDEX outbox_event_id_destination_key;
DROP INDEX outbox_event_id_endpoint_key;
DELETE FROM outbox WHERE endpoint_id IS NOT NULL AND delivered_at IS NULL
    AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE source = 'api');
ALTER TABLE outbox DROP COLUMN endpoint_id;
DELETE FROM outbox a USING outbox b
    WHERE a.event_id = b.event_id AND a.destination = b.destination AND a.id > b.id;
CREATE UNIQUE INDEX outbox_event_id_destination_key ON outbox (event_id, destination);
ALTER TABLE outbox ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
DROP TABLE webhook_endpoints;
