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

// JobCause is the cause recorded for a transition a job applied.
func JobCause(jobID int64) string { return fmt.Sprintf("job:%d", jobID) }

// RequestCause is the cause recorded for a change an API request made.
func RequestCause(requestID string) string { return "request:" + requestID }

// Cause is a recorded cause read back: what made a change, as JobCause and
// RequestCause write it.
type Cause struct {
	// JobID is the River job that made the change; 0 when none did.
	JobID int64
	// RequestID is the API or console request that made it; "" when none.
	RequestID string
}

// ParseCause reads a recorded cause, the one reader of what JobCause and
// RequestCause write; any other cause (payment:, cli:) is neither.
func ParseCause(cause string) Cause {
	if job, ok := strings.CutPrefix(cause, "job:"); ok {
		id, _ := strconv.ParseInt(job, 10, 64)
		return Cause{JobID: id}
	}
	if req, ok := strings.CutPrefix(cause, "request:"); ok {
		return Cause{RequestID: req}
	}
	return Cause{}
}
