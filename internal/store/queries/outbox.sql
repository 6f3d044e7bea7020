-- name: InsertOutbox :many
-- A message with the same event id and endpoint (an e-mail: destination)
-- is not stored again: no row comes back.
INSERT INTO outbox (event_id, channel, destination, trial_id, endpoint_id, payload, created_at)
VALUES (@event_id, @channel, @destination, @trial_id, @endpoint_id, @payload, @created_at)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: OutboxByID :one
SELECT * FROM outbox WHERE id = @id;

-- name: MarkOutboxDelivered :exec
UPDATE outbox SET delivered_at = @delivered_at::timestamptz, attempts = attempts + 1, last_error = NULL, failed_at = NULL
WHERE id = @id;

-- name: MarkOutboxAttemptFailed :exec
UPDATE outbox SET attempts = attempts + 1, last_error = @last_error, failed_at = @failed_at WHERE id = @id;

-- name: FailedOutbox :many
SELECT id, event_id, channel, destination, trial_id, endpoint_id, created_at,
       attempts, last_error, delivered_at, failed_at
FROM outbox
WHERE channel = @channel AND failed_at IS NOT NULL AND delivered_at IS NULL
ORDER BY id LIMIT @max_messages;

-- name: ClearOutboxFailure :execrows
UPDATE outbox SET failed_at = NULL, attempts = 0
WHERE id = @id AND failed_at IS NOT NULL AND delivered_at IS NULL;

-- name: OutboxOfEvents :many
-- Through the event id indexes.
SELECT id, event_id, channel, destination, trial_id, endpoint_id, created_at,
       attempts, last_error, delivered_at, failed_at
FROM outbox
WHERE event_id = ANY(@event_ids::text[]) AND channel = 'webhook' ORDER BY id;

-- name: DeleteDeliveredOutbox :execrows
-- With the attempt log; failed and waiting messages stay, whatever their age.
DELETE FROM outbox WHERE id IN (
    SELECT o.id FROM outbox o WHERE o.delivered_at < @before::timestamptz LIMIT @max_messages);
