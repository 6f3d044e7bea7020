package domain

import (
	"encoding/json"
	"time"
)

// State is where a trial stands. It is never written by hand: the trials
// table computes it from the trial's dates, so a row cannot claim one state
// and carry the dates of another.
type State string

// The states of a trial. An active trial expires at its expiration date; an
// expired one is deleted when its grace period ends; a deleted one can be
// restored until its organization is purged; an upgraded one is done.
const (
	StateActive   State = "active"
	StateExpired  State = "expired"
	StateDeleted  State = "deleted"
	StateUpgraded State = "upgraded"
)

// StatePurged is no trial's state but a pseudo-state: a purged trial's row
// is gone, and so is its state. trial_state_counts counts the trials purged
// so far under it (migration 00008), and the console lists them by it.
const StatePurged State = "purged"

// States are every state, in lifecycle order.
var States = []State{StateActive, StateExpired, StateDeleted, StateUpgraded}

// Action is an operator's action on a trial, as the console offers it.
type Action string

// The operator's actions on a trial.
const (
	ActionMoveExpiration Action = "expiration"
	ActionUpgrade        Action = "upgrade"
	ActionDelete         Action = "delete"
	ActionRestore        Action = "restore"
)

// Actions are every operator's action, in the order pages offer them.
var Actions = []Action{ActionMoveExpiration, ActionUpgrade, ActionDelete, ActionRestore}

// Actions are what an operator may do to a trial in s: the rules the
// lifecycle enforces, said once for the pages that offer them. An upgraded
// trial has none.
func (s State) Actions() []Action {
	switch {
	case s.Live():
		return []Action{ActionMoveExpiration, ActionUpgrade, ActionDelete}
	case s == StateDeleted:
		return []Action{ActionRestore}
	}
	return nil
}

// Live reports whether a trial in s still holds its organization's
// enterprise features or may get them back by an extension (active or
// expired): what deleting, extending and attaching enterprises refuse
// otherwise.
func (s State) Live() bool { return s == StateActive || s == StateExpired }

// Trial is an enterprise trial: a user's trial organization with enterprise
// features until ExpirationDate. Dates are UTC, to the millisecond.
type Trial struct {
	ID             int64
	UserID         int64
	OrganizationID int64
	// SelfService marks the one trial a user may start for themselves;
	// admins start as many others as they like.
	SelfService    bool
	CreatedAt      time.Time
	ExpirationDate time.Time
	Notes          *string
	ExpiredDate    *time.Time
	DeletedDate    *time.Time
	UpgradedDate   *time.Time
	// GraceEndsAt is when an expired trial's organization is deleted.
	GraceEndsAt *time.Time
	// ScheduleGen is the generation of the trial's schedule: every
	// reschedule bumps it, so a job of an earlier schedule does nothing.
	ScheduleGen int64
	State       State
	// TransitionJobID and ReminderJobIDs are the River jobs of the current
	// schedule.
	TransitionJobID *int64
	ReminderJobIDs  []int64
	// TestClockID is the test clock the trial lives on (nil: real time).
	TestClockID *int64
}

// Position is where a trial stands in its lifecycle: its state and the
// generation of its schedule, all a job needs to tell whether it is stale.
type Position struct {
	State       State
	ScheduleGen int64
}

// Position is where t stands.
func (t Trial) Position() Position { return Position{State: t.State, ScheduleGen: t.ScheduleGen} }

// TrialDetails are the descriptive fields of a trial request, kept for the
// people who follow trials up.
type TrialDetails struct {
	OrganizationName            *string
	UseCase                     *string
	UserHasMLModelsInProduction *string
	CompanyName                 *string
	CompanySize                 *string
	Country                     *string
	StateOrProvince             *string
	JobTitle                    *string
	UTMParams                   []json.RawMessage
}

// Instant is t as trialsd stores and shows every date: UTC, to the
// millisecond (the contract's dates carry three fractional digits, so a
// date read back equals the one written).
func Instant(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// PurgedTrial is what remains of a trial purged with its organization: its
// row is gone, its history ends in trial.purged, which says when and in
// which state it was.
type PurgedTrial struct {
	ID             int64
	OrganizationID int64
	PurgedAt       time.Time
	// State is the trial's state when it was purged (deleted, or upgraded
	// when its organization was deleted by hand).
	State State
}

// Organization is a workspace a trial gives enterprise features: a trial
// organization is made for each trial and purged with it.
type Organization struct {
	ID                 int64
	PublicID           string
	Name               string
	IsTrial            bool
	EnterpriseFeatures bool
	CreatedAt          time.Time
	DeletedAt          *time.Time
	PurgeAt            *time.Time
	PurgeJobID         *int64
}
