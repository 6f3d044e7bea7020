-- name: InsertEnterprise :one
INSERT INTO enterprises (organization_id, user_id, third_party_identifiers, created_at)
VALUES (@organization_id, @user_id, @third_party_identifiers, @created_at)
RETURNING public_id;
