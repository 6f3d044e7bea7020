-- name: InsertWebhookEndpoint :one
INSERT INTO webhook_endpoints (url, description, event_types, source, secret, created_at, updated_at)
VALUES (@url, @description, @event_types, @source, @secret, @created_at, @created_at)
RETURNING *;

-- name: WebhookEndpoints :many
SELECT * FROM webhook_endpoints ORDER BY id;

-- name: EnabledWebhookEndpoints :many
-- Enabled, and subscribed to the type (or to every type).
SELECT * FROM webhook_endpoints
WHERE disabled_at IS NULL AND (event_types = '{}' OR @event_type::text = ANY (event_types))
ORDER BY id;

-- name: WebhookEndpointByID :one
SELECT * FROM webhook_endpoints WHERE id = @id;

-- name: WebhookEndpointByIDForUpdate :one
-- FOR NO KEY UPDATE: serialises the attempts at one endpoint without
-- conflicting with the key-share locks their own attempt rows and the
-- transitions' outbox rows take (a FOR UPDATE after them would deadlock).
SELECT * FROM webhook_endpoints WHERE id = @id FOR NO KEY UPDATE;

-- name: UpdateWebhookEndpoint :execrows
UPDATE webhook_endpoints SET url = @url, description = @description, event_types = @event_types, secret = @secret,
    previous_secret = @previous_secret, previous_secret_expires_at = @previous_secret_expires_at,
    failing_since = @failing_since, disabled_at = @disabled_at, disabled_reason = @disabled_reason,
    updated_at = @updated_at
WHERE id = @id;

-- name: DeleteWebhookEndpoint :execrows
-- With its undelivered messages and its attempt log.
DELETE FROM webhook_endpoints WHERE id = @id;

-- name: AddConfigEndpoints :exec
INSERT INTO webhook_endpoints (url, source, created_at, updated_at)
SELECT u, 'config', @now, @now FROM unnest(@urls::text[]) u
ON CONFLICT (url) WHERE source = 'config' DO NOTHING;

-- name: DeleteConfigEndpointsBut :exec
DELETE FROM webhook_endpoints WHERE source = 'config' AND NOT (url = ANY (@urls::text[]));

-- name: InsertWebhookAttempt :exec
INSERT INTO webhook_attempts (outbox_id, endpoint_id, event_id, attempt, at, status_code, duration_ms, error)
VALUES (@outbox_id, @endpoint_id, @event_id, @attempt, @at, @status_code, @duration_ms, @error);

-- name: WebhookAttempts :many
SELECT * FROM webhook_attempts WHERE endpoint_id = @endpoint_id ORDER BY id DESC LIMIT @max_attempts;

-- name: FailedOutboxOfEndpoint :many
-- Messages whose every attempt failed at or after since.
SELECT id FROM outbox
WHERE endpoint_id = @endpoint_id::bigint AND failed_at >= @since::timestamptz AND delivered_at IS NULL ORDER BY id;

-- name: ClearEndpointFailing :exec
UPDATE webhook_endpoints SET failing_since = NULL WHERE id = @id AND failing_since IS NOT NULL;
