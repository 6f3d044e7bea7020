// Package jobs holds the River workers. Each one is the lifecycle rule it
// enforces, in a few lines: it calls the lifecycle service and reports the
// outcome; the decisions (is it still due? what follows?) live in the domain.
package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/signup"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
)

// Observer is told the outcome of every transition job, every repair and
// every webhook delivery attempt.
type Observer interface {
	Transition(kind, outcome string, lag time.Duration)
	Repaired(kind string, n int)
	OutboxDelivery(channel, outcome string)
	UnpaidSignupsRemoved(n int)
}

// Deps are what the workers call.
type Deps struct {
	Lifecycle *lifecycle.Service
	Signup    *signup.Service
	Outbox    *outbox.Deliverer
	Clock     clock.Clock
	Observer  Observer
	// PendingPaymentTTL is billing.pending_payment_ttl.
	PendingPaymentTTL time.Duration
	// OutboxRetention is outbox.delivered_retention.
	OutboxRetention time.Duration
	// Eligibility prunes the trial tombstones.
	Eligibility *eligibility.Service
}

// Register adds every worker to workers.
func Register(workers *river.Workers, d Deps) {
	r := reporter{clock: d.Clock, obs: d.Observer, svc: d.Lifecycle}
	river.AddWorker(workers, &ExpireTrialWorker{svc: d.Lifecycle, r: r})
	river.AddWorker(workers, &RemindTrialWorker{svc: d.Lifecycle, r: r})
	river.AddWorker(workers, &DeleteTrialWorker{svc: d.Lifecycle, r: r})
	river.AddWorker(workers, &PurgeOrganizationWorker{svc: d.Lifecycle, r: r})
	river.AddWorker(workers, &ReconcileTrialsWorker{svc: d.Lifecycle, obs: d.Observer})
	river.AddWorker(workers, &DeliverOutboxWorker{deliverer: d.Outbox, obs: d.Observer})
	river.AddWorker(workers, &NotifyTrialWorker{svc: d.Lifecycle, r: r})
	river.AddWorker(workers, &AdvanceTestClockWorker{svc: d.Lifecycle})
	river.AddWorker(workers, &RemoveUnpaidSignupsWorker{signup: d.Signup, ttl: d.PendingPaymentTTL, obs: d.Observer})
	river.AddWorker(workers, &PruneOutboxWorker{deliverer: d.Outbox, retention: d.OutboxRetention})
	river.AddWorker(workers, &PruneEligibilityWorker{rules: d.Eligibility})
}

// PruneEligibilityWorker forgets the trial tombstones past their retention.
type PruneEligibilityWorker struct {
	river.WorkerDefaults[jobargs.PruneEligibility]
	rules *eligibility.Service
}

// Work sweeps once.
func (w *PruneEligibilityWorker) Work(ctx context.Context, _ *river.Job[jobargs.PruneEligibility]) error {
	_, err := w.rules.Prune(ctx)
	return err
}

// PruneOutboxWorker deletes the messages delivered longer ago than the
// retention.
type PruneOutboxWorker struct {
	river.WorkerDefaults[jobargs.PruneOutbox]
	deliverer *outbox.Deliverer
	retention time.Duration
}

// Work sweeps once.
func (w *PruneOutboxWorker) Work(ctx context.Context, _ *river.Job[jobargs.PruneOutbox]) error {
	_, err := w.deliverer.PruneDelivered(ctx, w.retention)
	return err
}

// AdvanceTestClockWorker steps a test clock to its target.
type AdvanceTestClockWorker struct {
	river.WorkerDefaults[jobargs.AdvanceTestClock]
	svc *lifecycle.Service
}

// Work takes one step; a job whose step's jobs still run snoozes instead of
// holding its worker, until the step's last job wakes it or the recheck.
func (w *AdvanceTestClockWorker) Work(ctx context.Context, job *river.Job[jobargs.AdvanceTestClock]) error {
	err := w.svc.RunAdvance(ctx, job.Args)
	if errors.Is(err, lifecycle.ErrAdvanceWaits) {
		return river.JobSnooze(lifecycle.AdvanceRecheck)
	}
	return err
}

// RemoveUnpaidSignupsWorker removes sign-ups left unpaid past their TTL.
type RemoveUnpaidSignupsWorker struct {
	river.WorkerDefaults[jobargs.RemoveUnpaidSignups]
	signup *signup.Service
	ttl    time.Duration
	obs    Observer
}

// Work sweeps once.
func (w *RemoveUnpaidSignupsWorker) Work(ctx context.Context, _ *river.Job[jobargs.RemoveUnpaidSignups]) error {
	sweep, err := w.signup.RemoveUnpaid(ctx, w.ttl)
	w.obs.UnpaidSignupsRemoved(sweep.Removed)
	return err
}

// ExpireTrialWorker expires an active trial at its expiration date.
type ExpireTrialWorker struct {
	river.WorkerDefaults[jobargs.ExpireTrial]
	svc *lifecycle.Service
	r   reporter
}

// Work applies Expire.
func (w *ExpireTrialWorker) Work(ctx context.Context, job *river.Job[jobargs.ExpireTrial]) error {
	res, err := w.svc.Expire(ctx, job.Args.TrialID, job.Args.Generation, domain.JobCause(job.ID))
	return w.r.report(ctx, job.JobRow, "expire", res, err)
}

// RemindTrialWorker records trial.will_end ahead of expiry.
type RemindTrialWorker struct {
	river.WorkerDefaults[jobargs.RemindTrial]
	svc *lifecycle.Service
	r   reporter
}

// Work applies the reminder.
func (w *RemindTrialWorker) Work(ctx context.Context, job *river.Job[jobargs.RemindTrial]) error {
	res, err := w.svc.Remind(ctx, job.Args.TrialID, job.Args.Generation, job.Args.Before, domain.JobCause(job.ID))
	return w.r.report(ctx, job.JobRow, "remind", res, err)
}

// NotifyTrialWorker writes one of a trial's notices to the outbox and
// schedules the next.
type NotifyTrialWorker struct {
	river.WorkerDefaults[jobargs.NotifyTrial]
	svc *lifecycle.Service
	r   reporter
}

// Work applies the notice.
func (w *NotifyTrialWorker) Work(ctx context.Context, job *river.Job[jobargs.NotifyTrial]) error {
	res, err := w.svc.Notify(ctx, job.ID, job.Args, domain.JobCause(job.ID))
	return w.r.report(ctx, job.JobRow, "notify", res, err)
}

// DeleteTrialWorker deletes an expired trial's organization when its grace
// period ends.
type DeleteTrialWorker struct {
	river.WorkerDefaults[jobargs.DeleteTrial]
	svc *lifecycle.Service
	r   reporter
}

// Work applies Delete.
func (w *DeleteTrialWorker) Work(ctx context.Context, job *river.Job[jobargs.DeleteTrial]) error {
	res, err := w.svc.Delete(ctx, job.Args.TrialID, job.Args.Generation, domain.JobCause(job.ID))
	return w.r.report(ctx, job.JobRow, "delete", res, err)
}

// PurgeOrganizationWorker erases a soft-deleted organization at its purge date.
type PurgeOrganizationWorker struct {
	river.WorkerDefaults[jobargs.PurgeOrganization]
	svc *lifecycle.Service
	r   reporter
}

// Work applies Purge.
func (w *PurgeOrganizationWorker) Work(ctx context.Context, job *river.Job[jobargs.PurgeOrganization]) error {
	res, err := w.svc.Purge(ctx, job.Args.OrganizationID, job.Args.PurgeAt, domain.JobCause(job.ID))
	return w.r.report(ctx, job.JobRow, "purge", res, err)
}

// ReconcileTrialsWorker runs the periodic repair sweep.
type ReconcileTrialsWorker struct {
	river.WorkerDefaults[jobargs.ReconcileTrials]
	svc *lifecycle.Service
	obs Observer
}

// Work sweeps once and counts the repairs.
func (w *ReconcileTrialsWorker) Work(ctx context.Context, _ *river.Job[jobargs.ReconcileTrials]) error {
	report, err := w.svc.Reconcile(ctx)
	for kind, n := range report.Repaired {
		w.obs.Repaired(kind, n)
	}
	return err
}

// DeliverOutboxWorker delivers one outbox message: a lifecycle event to a
// webhook endpoint, or an e-mail.
type DeliverOutboxWorker struct {
	river.WorkerDefaults[jobargs.DeliverOutbox]
	deliverer *outbox.Deliverer
	obs       Observer
}

// Work makes one delivery attempt. A webhook's next attempt is scheduled
// by the outbox; an e-mail's error makes River retry with backoff, and the
// last attempt's failure, or the relay's permanent refusal (5xx), marks
// the message failed for replay. A webhook
// whose endpoint has every slot in flight snoozes, so it holds no worker
// while it waits and no attempt is counted.
func (w *DeliverOutboxWorker) Work(ctx context.Context, job *river.Job[jobargs.DeliverOutbox]) error {
	channel, outcome, err := w.deliverer.Deliver(ctx, outbox.Delivery{
		OutboxID: job.Args.OutboxID, Attempt: job.Args.Attempt, LastTry: job.Attempt >= job.MaxAttempts,
	})
	if busy := (*outbox.EndpointBusyError)(nil); errors.As(err, &busy) {
		return river.JobSnooze(busy.Wait)
	}
	if outcome != "" {
		w.obs.OutboxDelivery(channel, outcome)
	}
	if errors.As(err, new(*outbox.RejectedError)) {
		return river.JobCancel(err) // the relay will answer the same to every retry
	}
	return err
}

type reporter struct {
	clock clock.Clock
	obs   Observer
	svc   *lifecycle.Service
}

// report records a transition's outcome and turns "not due yet" into a
// snooze. A job of a test clock's trial that is done tells its clock's
// advance, which waits for it.
func (r reporter) report(ctx context.Context, job *rivertype.JobRow, kind string, res lifecycle.Result, err error) error {
	var notDue *lifecycle.NotDueError
	if errors.As(err, &notDue) {
		return river.JobSnooze(max(notDue.Due.Sub(r.clock.Now()), time.Second))
	}
	if err != nil {
		r.obs.Transition(kind, "failed", 0)
		return err
	}
	r.obs.Transition(kind, string(res.Outcome), res.At.Sub(res.Due))
	if job.Queue == jobargs.QueueTestClock {
		return r.svc.StepJobDone(ctx, job.ID)
	}
	return nil
}
