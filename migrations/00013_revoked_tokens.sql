-- A console logout revokes that session's JWT and no other: the token's id
-- (its jti claim) is kept here until the token would have expired anyway,
-- and every replica refuses it. Rows past expires_at are pruned as new ones
-- are added; the index finds them.

-- +goose Up
CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);

-- +goose Down
DROP TABLE revoked_tokens;
