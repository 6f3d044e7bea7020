package domain

import (
	"encoding/json"
	"time"
)

// Event is one entry of a trial's history. Every change of a trial records
// one, in the transaction of the change, and the webhooks carry it.
type Event struct {
	ID      int64
	TrialID int64
	Kind    string
	At      time.Time
	// Actor and Cause are as recorded: Actor.String() and a cause such as
	// JobCause or RequestCause.
	Actor string
	Cause string
	Data  json.RawMessage
}

// Event kinds of the contract, as the history and the webhooks name them.
const (
	EventCreated            = "trial.created"
	EventWillEnd            = "trial.will_end"
	EventExpired            = "trial.expired"
	EventExtended           = "trial.extended"
	EventShortened          = "trial.shortened"
	EventDeleted            = "trial.deleted"
	EventRestored           = "trial.restored"
	EventPurged             = "trial.purged"
	EventUpgraded           = "trial.upgraded"
	EventExtensionRequested = "trial.extension_requested"
	// EventEmailSent and EventEmailFailed record a notice e-mail to one of
	// the trial's people handed to the relay, or failed for good (the
	// relay refused it, or every attempt failed).
	EventEmailSent   = "trial.email_sent"
	EventEmailFailed = "trial.email_failed"
)

// EmailEventData is the data of a trial.email_sent or trial.email_failed
// event: which notice, to whom (masked), how it went, and the e-mail's
// Message-ID.
type EmailEventData struct {
	Template  string `json:"template"`
	To        string `json:"to"`
	Outcome   string `json:"outcome"`
	MessageID string `json:"messageId"`
}

// EventKinds lists every kind above, in the order of a trial's life: what a
// webhook endpoint may subscribe to.
var EventKinds = []string{
	EventCreated, EventWillEnd, EventExpired, EventExtended, EventShortened,
	EventDeleted, EventRestored, EventPurged, EventUpgraded, EventExtensionRequested,
	EventEmailSent, EventEmailFailed,
}
