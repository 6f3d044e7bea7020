// Package jobargs defines the arguments of every River job trialsd enqueues.
// It is a leaf: the lifecycle package (which enqueues jobs inside its
// transactions) and the workers in package jobs (which call the lifecycle)
// both import it, and it imports neither.
//
// Args are versioned with V so a job enqueued by an older release still
// decodes after an upgrade: fields are only ever added, and a worker reads V
// to interpret what an old job carried.
//
// Trial jobs carry the trial's schedule generation at enqueue time. Every
// reschedule bumps it, so a job left over from an earlier schedule does
// nothing, and uniqueness on (trial, generation) never refuses a legitimate
// new job because an older one with the same date already completed: River's
// default unique states include completed, so without the generation "expire
// at D, extend, shorten back to D" would be refused as a duplicate.
package jobargs

import (
	"time"

	"github.com/riverqueue/river"
)

// QueueLifecycle is the queue every trial transition but expiry runs on.
const QueueLifecycle = "lifecycle"

// QueueExpiry runs the trials' expiries apart from the other transitions,
// with few workers (river.expiry_workers): each expiry job also expires the
// other due trials it can claim and deletes their jobs, so a few jobs at a
// time do a storm's work, where as many workers as the lifecycle queue has
// would fetch the claimed trials' jobs only to find them done.
const QueueExpiry = "expiry"

// QueueTestClock runs the test clocks' work, apart from real time's: the
// advances and every job of a trial on a clock, with few workers
// (river.test_clock_workers), so rehearsing on a staging daemon never
// delays its real trials' transitions.
const QueueTestClock = "test_clock"

// QueueMaintenance runs the reconciler, apart from the transitions it repairs.
const QueueMaintenance = "maintenance"

// Version is the version of every args type this release writes.
const Version = 1

// Kinds of the jobs, as stored in river_job.kind.
const (
	KindExpireTrial       = "trial.expire"
	KindRemindTrial       = "trial.remind"
	KindDeleteTrial       = "trial.delete"
	KindPurgeOrganization = "organization.purge"
	KindReconcileTrials   = "trials.reconcile"
	KindDeliverOutbox     = "outbox.deliver"
	KindRemoveUnpaid      = "signups.remove_unpaid"
	KindAdvanceTestClock  = "test_clock.advance"
	KindPruneOutbox       = "outbox.prune"
	KindNotifyTrial       = "trial.notify"
	KindPruneEligibility  = "eligibility.prune"
)

// QueueOutbox delivers webhooks, so a slow receiver never holds up a
// transition.
const QueueOutbox = "outbox"

// QueueEmail sends e-mails, with workers of its own: no webhook receiver,
// however slow, holds up an activation code.
const QueueEmail = "email"

func lifecycleOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueLifecycle, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ExpireTrial expires a trial at its expiration date.
type ExpireTrial struct {
	V          int   `json:"v"`
	TrialID    int64 `json:"trial_id" river:"unique"`
	Generation int64 `json:"generation" river:"unique"`
}

// Kind names the job in river_job.
func (ExpireTrial) Kind() string { return KindExpireTrial }

// InsertOpts puts the job on the expiry queue, once per trial and generation.
func (ExpireTrial) InsertOpts() river.InsertOpts {
	opts := lifecycleOpts()
	opts.Queue = QueueExpiry
	return opts
}

// RemindTrial records a trial.will_end reminder Before its expiration.
type RemindTrial struct {
	V          int           `json:"v"`
	TrialID    int64         `json:"trial_id" river:"unique"`
	Generation int64         `json:"generation" river:"unique"`
	Before     time.Duration `json:"before" river:"unique"`
}

// Kind names the job in river_job.
func (RemindTrial) Kind() string { return KindRemindTrial }

// InsertOpts puts the job on the lifecycle queue, once per trial, generation and offset.
func (RemindTrial) InsertOpts() river.InsertOpts { return lifecycleOpts() }

// DeleteTrial soft-deletes an expired trial's organization when its grace
// period ends.
type DeleteTrial struct {
	V          int   `json:"v"`
	TrialID    int64 `json:"trial_id"`
	Generation int64 `json:"generation"`
}

// Kind names the job in river_job.
func (DeleteTrial) Kind() string { return KindDeleteTrial }

// InsertOpts puts the job on the lifecycle queue, without River's unique
// key. Every Delete job is inserted by the transition that expires its
// trial, under the trial's row lock, for the generation it leaves (a
// reschedule, repairs included, starts a new one), so a second job for the
// same trial and generation cannot be inserted to begin with, and one
// would find its work done. The key cost more than it guards: River's
// unique index is keyed by a SHA-256, so on a big table each expiry's
// Delete job wrote a full-page image to the WAL (at 10M trials, 75 of
// every 100 rows; the batch's insert took 40 ms against 6 ms).
func (DeleteTrial) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueLifecycle}
}

// NotifyTrial writes one of a trial's notices (its lifecycle e-mails, by
// Template; Before for the reminders and warnings before a date) and
// schedules the next.
type NotifyTrial struct {
	V          int           `json:"v"`
	TrialID    int64         `json:"trial_id"`
	Generation int64         `json:"generation"`
	Template   string        `json:"template"`
	Before     time.Duration `json:"before,omitempty"`
}

// Kind names the job in river_job.
func (NotifyTrial) Kind() string { return KindNotifyTrial }

// InsertOpts puts the job on the e-mail queue, off the transitions' path,
// and without River's unique key, as DeleteTrial: each is inserted under
// its trial's row lock by the change that enters its state or by the
// notice before it, and is recorded among the trial's reminders, which
// tells a repeated attempt its work is done.
//
// Its priority is below the deliveries' (River's default, 1): in a storm
// the e-mails already written go out while the later notices are written,
// instead of waiting behind every one of them.
func (NotifyTrial) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueEmail, Priority: 2}
}

// PurgeOrganization erases a soft-deleted organization for good at PurgeAt.
// It is keyed by organization, not trial, because organizations without a
// trial are purged too; PurgeAt tells a stale job (the organization was
// restored and deleted again since) from the current one.
type PurgeOrganization struct {
	V              int       `json:"v"`
	OrganizationID int64     `json:"organization_id" river:"unique"`
	PurgeAt        time.Time `json:"purge_at" river:"unique"`
}

// Kind names the job in river_job.
func (PurgeOrganization) Kind() string { return KindPurgeOrganization }

// InsertOpts puts the job on the lifecycle queue, once per organization and date.
func (PurgeOrganization) InsertOpts() river.InsertOpts { return lifecycleOpts() }

// AdvanceTestClock moves a test clock to Target, applying every transition
// of its trials due on the way, each at its own due time. It is keyed by
// clock, target and step, so a retried request or a second replica never
// starts a second advance of one clock to one time.
//
// The job the request inserts (Step zero) takes the first step; each step
// inserts the job that takes the next one (Step: the step's time), run
// when the step's last job is done or, failing that, when it is due.
type AdvanceTestClock struct {
	V       int       `json:"v"`
	ClockID int64     `json:"clock_id" river:"unique"`
	Target  time.Time `json:"target" river:"unique"`
	// Step is the clock's time at the step whose jobs this job waits for;
	// zero: the advance's first job.
	Step time.Time `json:"step,omitzero" river:"unique"`
}

// Kind names the job in river_job.
func (AdvanceTestClock) Kind() string { return KindAdvanceTestClock }

// InsertOpts puts the advance on the test-clock queue, with the jobs of the
// trials it steps through.
func (AdvanceTestClock) InsertOpts() river.InsertOpts {
	opts := lifecycleOpts()
	opts.Queue = QueueTestClock
	return opts
}

// ReconcileTrials is the periodic sweep that re-enqueues lost transitions.
// Tick is the minute of the cron activation that enqueued it.
type ReconcileTrials struct {
	V    int       `json:"v"`
	Tick time.Time `json:"tick" river:"unique"`
}

// Kind names the job in river_job.
func (ReconcileTrials) Kind() string { return KindReconcileTrials }

// InsertOpts puts the sweep on the maintenance queue; one per period, so
// replicas (or a leader change mid-period) never run it twice per tick.
func (ReconcileTrials) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 3}
}

// DeliverOutbox delivers one outbox message (a webhook or an e-mail).
// Deliveries are not unique: a replay enqueues a new job for the same
// message, and the worker does nothing for a message already delivered.
type DeliverOutbox struct {
	V        int   `json:"v"`
	OutboxID int64 `json:"outbox_id"`
	// Attempt is the webhook attempt this job makes (counting from 1): the
	// outbox schedules each retry itself. 0: an e-mail, retried by River.
	Attempt int `json:"attempt,omitempty"`
}

// Kind names the job in river_job.
func (DeliverOutbox) Kind() string { return KindDeliverOutbox }

// InsertOpts puts the job on the outbox queue; an e-mail's goes on the
// e-mail queue (its writer says so).
func (DeliverOutbox) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueOutbox} }

// RemoveUnpaidSignups is the periodic sweep that removes Professional
// sign-ups left unpaid past billing.pending_payment_ttl. Tick is the minute
// of the cron activation that enqueued it.
type RemoveUnpaidSignups struct {
	V    int       `json:"v"`
	Tick time.Time `json:"tick" river:"unique"`
}

// Kind names the job in river_job.
func (RemoveUnpaidSignups) Kind() string { return KindRemoveUnpaid }

// InsertOpts puts the sweep on the maintenance queue.
func (RemoveUnpaidSignups) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 3}
}

// PruneOutbox is the hourly sweep that deletes messages delivered longer
// than outbox.delivered_retention ago. Tick is the minute of the cron
// activation that enqueued it.
type PruneOutbox struct {
	V    int       `json:"v"`
	Tick time.Time `json:"tick" river:"unique"`
}

// Kind names the job in river_job.
func (PruneOutbox) Kind() string { return KindPruneOutbox }

// InsertOpts puts the sweep on the maintenance queue.
func (PruneOutbox) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 3}
}

// PruneEligibility is the hourly sweep that forgets the trial tombstones
// older than eligibility.history_retention. Tick is the minute of the cron
// activation that enqueued it.
type PruneEligibility struct {
	V    int       `json:"v"`
	Tick time.Time `json:"tick" river:"unique"`
}

// Kind names the job in river_job.
func (PruneEligibility) Kind() string { return KindPruneEligibility }

// InsertOpts puts the sweep on the maintenance queue.
func (PruneEligibility) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 3}
}
