package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// JobMiddleware is a River worker middleware recording how long each job
// took and how it ended, by kind.
type JobMiddleware struct {
	river.MiddlewareDefaults
	m *Metrics
}

// JobMiddleware returns the middleware recording into m.
func (m *Metrics) JobMiddleware() *JobMiddleware { return &JobMiddleware{m: m} }

// Work times the job and classifies its end: completed, snoozed, cancelled
// or failed (retried or discarded by River).
func (j *JobMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	err := doInner(ctx)
	outcome := "completed"
	var snooze *river.JobSnoozeError
	var cancel *river.JobCancelError
	switch {
	case err == nil:
	case errors.As(err, &snooze):
		outcome = "snoozed"
	case errors.As(err, &cancel):
		outcome = "cancelled"
	default:
		outcome = "failed"
	}
	j.m.jobsWorked.WithLabelValues(job.Kind, outcome).Inc()
	j.m.jobDuration.WithLabelValues(job.Kind).Observe(time.Since(start).Seconds())
	return err
}

// QueueStats is the state of River's queues, as the refresher reads it.
type QueueStats struct {
	// Jobs counts unfinished (and discarded) jobs by queue and state.
	Jobs map[[2]string]int64
	// OldestAvailable is, per queue, how long its oldest due job has waited.
	OldestAvailable map[string]time.Duration
	// Leader says whether a River leader is elected.
	Leader bool
}

// QueueReader reads QueueStats.
type QueueReader func(ctx context.Context) (QueueStats, error)

// RefreshQueues sets the job gauges from stats: every known queue and
// state reads 0 when stats has no jobs for it, rather than vanishing.
func (m *Metrics) RefreshQueues(stats QueueStats) {
	m.jobs.Reset()
	m.oldestAvailable.Reset()
	for _, queue := range queues {
		m.oldestAvailable.WithLabelValues(queue).Set(0)
		for _, state := range jobStates {
			m.jobs.WithLabelValues(queue, string(state)).Set(0)
		}
	}
	for k, n := range stats.Jobs {
		m.jobs.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
	for queue, age := range stats.OldestAvailable {
		m.oldestAvailable.WithLabelValues(queue).Set(max(age, 0).Seconds())
	}
	leader := 0.0
	if stats.Leader {
		leader = 1
	}
	m.leader.Set(leader)
}
