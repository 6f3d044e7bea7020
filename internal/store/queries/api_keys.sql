-- name: InsertAPIKey :one
INSERT INTO api_keys (user_id, name, key_hash, prefix, created_at)
VALUES (@user_id, @name, @key_hash, @prefix, @created_at)
RETURNING id;

-- name: APIKeysOfUser :many
SELECT id, user_id, name, prefix, created_at, revoked_at
FROM api_keys WHERE user_id = @user_id ORDER BY id DESC;

-- name: RevokeAPIKey :execrows
UPDATE api_keys SET revoked_at = @revoked_at::timestamptz
WHERE user_id = @user_id AND (id = @id OR prefix = @prefix) AND revoked_at IS NULL;
