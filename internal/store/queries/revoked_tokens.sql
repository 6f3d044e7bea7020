-- RevokeToken prunes the tokens expired by now: none can be used again.
-- name: RevokeToken :exec
WITH pruned AS (DELETE FROM revoked_tokens WHERE revoked_tokens.expires_at < @now::timestamptz)
INSERT INTO revoked_tokens (jti, expires_at) VALUES (@jti, @expires_at)
ON CONFLICT (jti) DO NOTHING;
