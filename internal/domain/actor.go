package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// Actor is who causes a change: a signed-in user or admin, the system (a
// scheduled transition, a payment) or an operator at the command line.
type Actor struct {
	UserID int64
	Admin  bool
	// system marks System and Operator, which act for no user.
	system bool
}

// System is the actor of scheduled transitions and payment callbacks.
var System = Actor{system: true}

// Operator is an operator acting from the command line with an admin's
// rights; its changes are recorded as the system's.
var Operator = Actor{Admin: true, system: true}

// recordedSystem is how System and Operator are recorded.
const recordedSystem = "system"

// String is the actor as recorded in events: "user:<id>", "admin:<id>" or
// "system".
func (a Actor) String() string {
	switch {
	case a.system:
		return recordedSystem
	case a.Admin:
		return fmt.Sprintf("admin:%d", a.UserID)
	default:
		return fmt.Sprintf("user:%d", a.UserID)
	}
}

// The causes a change records (trial_events.cause), written by these
// functions and constants and read back by ParseCause alone.
const (
	// SweepCause is the cause of the expiries a sweep applies.
	SweepCause = "sweep:expiry"
	// ReconcileCause is the cause of the repairs the reconcile sweep makes.
	ReconcileCause = "reconcile"
	// TestClockDeleteCause is the cause of what deleting a test clock does
	// to its trials.
	TestClockDeleteCause = "test-clock-delete"
)

// JobCause is the cause recorded for a transition a job applied.
func JobCause(jobID int64) string { return fmt.Sprintf("job:%d", jobID) }

// RequestCause is the cause recorded for a change an API request made.
func RequestCause(requestID string) string { return "request:" + requestID }

// PaymentCause is the cause recorded for a change a payment callback made,
// by the provider's event id.
func PaymentCause(eventID string) string { return "payment:" + eventID }

// CommandCause is the cause recorded for a change an operator command
// made, such as "trials-extend".
func CommandCause(command string) string { return "cli:" + command }

// OutboxCause is the cause recorded for what an outbox delivery did: the
// notice e-mail it sent or failed, by the outbox message's id.
func OutboxCause(outboxID int64) string { return fmt.Sprintf("outbox:%d", outboxID) }

// Cause is a recorded cause read back: what made a change. At most one
// field is set; none for the constant causes (SweepCause and the others),
// which read as themselves.
type Cause struct {
	// JobID is the River job that made the change.
	JobID int64
	// RequestID is the API or console request that made it.
	RequestID string
	// PaymentEventID is the payment provider's event that made it.
	PaymentEventID string
	// Command is the operator command that made it.
	Command string
	// OutboxID is the outbox message whose delivery made it.
	OutboxID int64
}

// ParseCause reads a recorded cause, the one reader of what the cause
// functions write. A job cause whose id is not a number reads as no cause.
func ParseCause(cause string) Cause {
	kind, ref, _ := strings.Cut(cause, ":")
	switch kind {
	case "job":
		id, _ := strconv.ParseInt(ref, 10, 64)
		return Cause{JobID: id}
	case "request":
		return Cause{RequestID: ref}
	case "payment":
		return Cause{PaymentEventID: ref}
	case "cli":
		return Cause{Command: ref}
	case "outbox":
		id, _ := strconv.ParseInt(ref, 10, 64)
		return Cause{OutboxID: id}
	}
	return Cause{}
}
