-- name: ClaimIdempotencyKey :execrows
INSERT INTO idempotency_records (organization_id, key, request_sha256, response_status, response_body, created_at)
VALUES (@organization_id, @key, @request_sha256, 0, '{}', @created_at)
ON CONFLICT (organization_id, key) DO NOTHING;

-- name: IdempotencyRecord :one
SELECT request_sha256, response_status, response_body FROM idempotency_records
WHERE organization_id = @organization_id AND key = @key;

-- name: CompleteIdempotencyKey :exec
UPDATE idempotency_records SET response_status = @response_status, response_body = @response_body
WHERE organization_id = @organization_id AND key = @key;
