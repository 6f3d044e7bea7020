package domain

import "time"

// Delivery is how one message of the outbox stands: where it goes and how
// its delivery went, without its payload, which a list never shows and
// which is the bulk of the row. The console's timeline and the operators'
// lists of failed deliveries show these.
type Delivery struct {
	ID      int64
	EventID string
	// Channel is "webhook" or "email".
	Channel     string
	Destination string
	TrialID     *int64
	// EndpointID is the webhook endpoint a webhook goes to; nil for e-mails.
	EndpointID  *int64
	CreatedAt   time.Time
	Attempts    int
	LastError   *string
	DeliveredAt *time.Time
	FailedAt    *time.Time
}
