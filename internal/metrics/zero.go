package metrics

import (
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/emails"
	"github.com/trialsd/trialsd/internal/jobargs"
)

// The label values the daemon's counters and gauges take, known in
// advance. A labelled series Prometheus has never seen at 0 hides its first
// increment from rate() and increase() (the first repair, the first failed
// delivery), and a gauge with nothing to report vanishes instead of reading
// 0; so every one of them is created at 0 when the metrics are.
var (
	// transitionKinds and transitionOutcomes are what the transition
	// workers report (package jobs, lifecycle.Outcome and "failed").
	transitionKinds    = []string{"expire", "remind", "delete", "purge", "notify"}
	transitionOutcomes = []string{"applied", "already_applied", "skipped", "failed"}
	// repairKinds are the job kinds the reconciler re-enqueues.
	repairKinds = []string{jobargs.KindExpireTrial, jobargs.KindDeleteTrial, jobargs.KindPurgeOrganization}
	// outboxChannels and outboxOutcomes are the outbox's (package outbox).
	outboxChannels = []string{"webhook", "email"}
	outboxOutcomes = []string{"delivered", "logged", "retrying", "failed", "skipped"}
	// jobKinds are every River job kind the workers run.
	jobKinds = []string{
		jobargs.KindExpireTrial, jobargs.KindRemindTrial, jobargs.KindDeleteTrial, jobargs.KindPurgeOrganization,
		jobargs.KindReconcileTrials, jobargs.KindDeliverOutbox, jobargs.KindRemoveUnpaid, jobargs.KindPruneOutbox,
		jobargs.KindNotifyTrial, jobargs.KindPruneEligibility,
	}
	jobOutcomes = []string{"completed", "snoozed", "cancelled", "failed"}
	// queues are River's queues; jobStates the states trialsd_jobs
	// reports (unfinished ones and discarded).
	queues    = []string{jobargs.QueueLifecycle, jobargs.QueueExpiry, jobargs.QueueTestClock, jobargs.QueueMaintenance, jobargs.QueueOutbox, jobargs.QueueEmail}
	jobStates = []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable,
		rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateDiscarded,
	}
	// signupKinds and signupOutcomes are the public sign-ups' (package
	// httpapi).
	signupKinds    = []string{"enterprise_trial", "professional"}
	signupOutcomes = []string{
		"accepted", "turnstile_failed", "turnstile_unavailable", "rejected_email",
		"invalid", "conflict", "rate_limited", "error",
	}
)

// startAtZero creates every series of a known label value at 0.
func (m *Metrics) startAtZero() {
	for _, kind := range transitionKinds {
		m.lag.WithLabelValues(kind)
		for _, outcome := range transitionOutcomes {
			m.transitions.WithLabelValues(kind, outcome)
		}
	}
	for _, kind := range repairKinds {
		m.repairs.WithLabelValues(kind)
	}
	for _, channel := range outboxChannels {
		for _, outcome := range outboxOutcomes {
			m.outbox.WithLabelValues(channel, outcome)
		}
	}
	for _, kind := range jobKinds {
		m.jobDuration.WithLabelValues(kind)
		for _, outcome := range jobOutcomes {
			m.jobsWorked.WithLabelValues(kind, outcome)
		}
	}
	for _, template := range emails.Names {
		for _, outcome := range []string{"delivered", "logged", "failed"} {
			m.emails.WithLabelValues(template, outcome)
		}
	}
	for _, reason := range domain.RefusalReasons {
		m.refusals.WithLabelValues(reason)
	}
	for _, kind := range signupKinds {
		for _, outcome := range signupOutcomes {
			m.signups.WithLabelValues(kind, outcome)
		}
	}
	m.RefreshQueues(QueueStats{})
	m.RefreshUpcoming(Upcoming{})
}
