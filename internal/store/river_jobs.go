package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/domain"
)

// This file is the one place trialsd reads River's river_job table itself,
// for what River's API cannot ask in bulk: which of a batch of due trials
// has no live job for its next transition. Trials and organizations record
// their jobs' ids, so each check is a primary-key lookup.

// The groups of River's job states trialsd asks about, in one place for the
// lifecycle (which cancels and lists jobs through River's API) and for the
// queries of this file.
var (
	// PendingJobStates are the states of a job that has not started: what an
	// operation may cancel. A running job is never among them.
	PendingJobStates = []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStateScheduled,
		rivertype.JobStateRetryable, rivertype.JobStatePending,
	}
	// LiveJobStates are the pending states and running: a job that will
	// still do its work.
	LiveJobStates = append(PendingJobStates[:len(PendingJobStates):len(PendingJobStates)], rivertype.JobStateRunning)
	// UnfinishedJobStates are the live states and discarded: every job
	// River's retention does not delete on its own.
	UnfinishedJobStates = append(LiveJobStates[:len(LiveJobStates):len(LiveJobStates)], rivertype.JobStateDiscarded)
)

// stateNames are states as a query parameter: compared as
// state = ANY($n::text[]::river_job_state[]), which keeps River's indexes.
func stateNames(states []rivertype.JobState) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}

// TrialsWithoutLiveJob returns the ids of those of the given due trials
// whose next transition has no live (pending, scheduled, available, running
// or retryable) job: the recorded Expire or Delete of an active or expired
// trial, the recorded Purge of a deleted trial's organization.
func (q *Queries) TrialsWithoutLiveJob(ctx context.Context, due []DueTrial) ([]int64, error) {
	ids := make([]int64, len(due))
	for i, d := range due {
		ids[i] = d.ID
	}
	rows, err := q.db.Query(ctx, `
		SELECT t.id
		FROM trials t
		JOIN organizations o ON o.id = t.organization_id
		LEFT JOIN river_job j
		       ON j.id = CASE WHEN t.state = 'deleted' THEN o.purge_job_id ELSE t.transition_job_id END
		      AND j.state = ANY($2::text[]::river_job_state[])
		WHERE t.id = ANY($1::bigint[]) AND j.id IS NULL
		ORDER BY t.id`, ids, stateNames(LiveJobStates))
	if err != nil {
		return nil, fmt.Errorf("checking live jobs of due trials: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("checking live jobs of due trials: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// JobCount is how many jobs of a queue are in a state.
type JobCount struct {
	Queue, State string
	N            int64
}

// UnfinishedJobCounts counts jobs by queue and state, leaving out completed
// and cancelled ones (River's retention deletes those; counting them would
// read the whole table).
func (q *Queries) UnfinishedJobCounts(ctx context.Context) ([]JobCount, error) {
	rows, err := q.db.Query(ctx, `
		SELECT queue, state::text, count(*) FROM river_job
		WHERE state = ANY($1::text[]::river_job_state[])
		GROUP BY queue, state`, stateNames(UnfinishedJobStates))
	return collect(rows, err, "counting jobs", pgx.RowToStructByPos[JobCount])
}

// OldestAvailableJobs returns, per queue, when its oldest job waiting for a
// worker became due: the measure of a queue falling behind.
func (q *Queries) OldestAvailableJobs(ctx context.Context) (map[string]time.Time, error) {
	rows, err := q.db.Query(ctx, `SELECT queue, min(scheduled_at) FROM river_job WHERE state = 'available' GROUP BY queue`)
	if err != nil {
		return nil, fmt.Errorf("finding oldest available jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var queue string
		var at time.Time
		if err := rows.Scan(&queue, &at); err != nil {
			return nil, fmt.Errorf("finding oldest available jobs: %w", err)
		}
		out[queue] = at
	}
	return out, rows.Err()
}

// RiverLeaderElected reports whether a River client holds an unexpired
// leadership (River has no public API for it); without a leader no
// scheduled job is promoted and no periodic job runs.
func (q *Queries) RiverLeaderElected(ctx context.Context, now time.Time) (bool, error) {
	var ok bool
	err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_leader WHERE expires_at > $1)`, now).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("reading river_leader: %w", err)
	}
	return ok, nil
}

// UpcomingJobs counts the not-yet-run jobs of kinds due by to (overdue ones
// included: they are due now), by hour (UTC) and kind.
func (q *Queries) UpcomingJobs(ctx context.Context, kinds []string, to time.Time) ([]domain.UpcomingCount, error) {
	rows, err := q.db.Query(ctx, `
		SELECT date_trunc('hour', scheduled_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', kind, count(*)
		FROM river_job
		WHERE state = ANY($3::text[]::river_job_state[])
		  AND kind = ANY($1) AND scheduled_at <= $2
		GROUP BY 1, 2 ORDER BY 1, 2`, kinds, to, stateNames(PendingJobStates))
	return collect(rows, err, "counting upcoming jobs", pgx.RowToStructByPos[domain.UpcomingCount])
}
