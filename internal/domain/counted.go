package domain

import "time"

// TrialSource is where a trial came from, as the growth dashboards tell
// starts apart.
type TrialSource string

// Sources of a trial.
const (
	// SourceSelfService: a signed-in user started their own trial.
	SourceSelfService TrialSource = "self_service"
	// SourceEnterpriseSignup: the public enterprise-trial sign-up created
	// the user and their trial together.
	SourceEnterpriseSignup TrialSource = "enterprise_signup"
	// SourceAdmin: an admin started a trial, for themselves or a user.
	SourceAdmin TrialSource = "admin"
)

// TrialSources are every source, so a counter of starts can read 0 for
// each before the first start.
var TrialSources = []TrialSource{SourceSelfService, SourceEnterpriseSignup, SourceAdmin}

// ConversionPath is how a trial became a paying enterprise account.
type ConversionPath string

// Paths of a conversion.
const (
	// PathAdmin: an admin (or an operator) upgraded the trial.
	PathAdmin ConversionPath = "admin"
	// PathEnterprise: the v2 create-enterprise operation upgraded it.
	PathEnterprise ConversionPath = "enterprise"
	// PathPayment: a payment callback for its organization upgraded it.
	PathPayment ConversionPath = "payment"
)

// ConversionPaths are every path, for counters that start at 0.
var ConversionPaths = []ConversionPath{PathAdmin, PathEnterprise, PathPayment}

// Committed is one event of a lifecycle change whose transaction
// committed, as the lifecycle reports it to its observer: what the metrics
// count and the log records. A change that rolled back reports nothing.
type Committed struct {
	Event Event
	// OrganizationID is the trial's organization.
	OrganizationID int64
	// Source is set on trial.created.
	Source TrialSource
	// Path and From (the state the trial left) are set on trial.upgraded.
	Path ConversionPath
	From State
	// Age is how long the trial had existed at the event: on
	// trial.upgraded, the time it took to convert.
	Age time.Duration
	// Due is when a job-driven transition was due (its lag is Event.At
	// minus Due); zero for a change a request made.
	Due time.Time
	// TestClockID is the test clock of a rehearsed trial, whose changes
	// the business metrics leave out; nil for real time.
	TestClockID *int64
}
