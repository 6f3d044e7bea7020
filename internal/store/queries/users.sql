-- name: InsertUser :one
INSERT INTO users (username, email, name, password_hash, is_admin, job_title, company_name,
    plan, plan_state, created_at, updated_at)
VALUES (@username, @email, @name, @password_hash, @is_admin, @job_title, @company_name,
    coalesce(nullif(@plan::text, ''), 'free'), coalesce(nullif(@plan_state::text, ''), 'active'), @now, @now)
RETURNING *;

-- name: UserByID :one
SELECT * FROM users WHERE id = @id;

-- name: UserByIDForUpdate :one
SELECT * FROM users WHERE id = @id FOR UPDATE;

-- name: UserByUsername :one
SELECT * FROM users WHERE lower(username) = lower(@username);

-- name: UserByEmail :one
SELECT * FROM users WHERE lower(email) = lower(@email);

-- name: UserByLogin :one
-- A username beats an e-mail that reads the same.
SELECT * FROM users WHERE lower(username) = lower(@login) OR lower(email) = lower(@login)
ORDER BY lower(username) = lower(@login) DESC LIMIT 1;

-- name: UsersByPublicIDs :many
SELECT * FROM users WHERE public_id = ANY(@public_ids::text[]);

-- name: UserByAPIKeyHash :one
SELECT sqlc.embed(u) FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.key_hash = @key_hash AND k.revoked_at IS NULL;

-- name: TokenUser :one
SELECT sqlc.embed(users), EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = @jti) AS revoked
FROM users WHERE id = @id;

-- name: UpdateUserContact :exec
-- A new address (other than in case) is unverified, and the old
-- activation code no longer counts.
UPDATE users SET email = @email, name = @name, updated_at = @now,
    email_verified = email_verified AND lower(email) = lower(@email),
    activation_code_hash = CASE WHEN lower(email) = lower(@email) THEN activation_code_hash END,
    activation_code_expires_at = CASE WHEN lower(email) = lower(@email) THEN activation_code_expires_at END
WHERE id = @id;

-- name: PromoteAdmin :exec
-- A new password revokes every JWT issued so far.
UPDATE users SET is_admin = true, password_hash = coalesce(sqlc.narg(password_hash), password_hash), updated_at = @now,
    token_version = token_version + CASE WHEN sqlc.narg(password_hash)::text IS NULL THEN 0 ELSE 1 END
WHERE id = @id;

-- name: UnpaidSignups :many
-- The plan state is written literally, so that the partial index
-- users_pending_payment_idx serves the query.
SELECT u.id, u.created_at,
       (EXISTS (SELECT FROM trials t WHERE t.user_id = u.id)
       OR EXISTS (SELECT FROM organization_members m WHERE m.user_id = u.id)
       OR EXISTS (SELECT FROM enterprises e WHERE e.user_id = u.id))::boolean AS owns
FROM users u
WHERE u.plan_state = 'pending_payment' AND u.created_at <= @created_before
  AND (u.created_at, u.id) > (@after_created::timestamptz, @after_id::bigint)
ORDER BY u.created_at, u.id LIMIT @max_users;

-- name: LockUnpaidSignups :many
SELECT id FROM users WHERE id = ANY(@ids::bigint[]) AND plan_state = 'pending_payment'
ORDER BY id FOR UPDATE SKIP LOCKED;

-- name: DeleteUsers :exec
DELETE FROM users WHERE id = ANY(@ids::bigint[]);

-- name: BumpTokenVersion :exec
UPDATE users SET token_version = token_version + 1 WHERE id = @id;

-- name: ActivatePlan :execrows
UPDATE users SET plan_state = 'active', updated_at = @now WHERE id = @id AND plan_state = 'pending_payment';

-- name: SetActivationCode :exec
UPDATE users SET activation_code_hash = @activation_code_hash, activation_code_expires_at = @activation_code_expires_at
WHERE id = @id;

-- name: ActivationCode :one
SELECT activation_code_hash, activation_code_expires_at, email_verified FROM users WHERE id = @id FOR UPDATE;

-- name: MarkEmailVerified :exec
UPDATE users SET email_verified = true, activation_code_hash = NULL, activation_code_expires_at = NULL, updated_at = @now
WHERE id = @id;
