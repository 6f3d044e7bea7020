-- name: InsertPaymentEvent :execrows
INSERT INTO payment_events (id, type, payload, received_at)
VALUES (@id, @type, @payload, @received_at)
ON CONFLICT (id) DO NOTHING;
