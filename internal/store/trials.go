package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
)

// TrialsOneSelfServiceKey is the unique index that gives each user one
// self-service trial.
const TrialsOneSelfServiceKey = "trials_one_self_service_per_user"

const trialColumns = `id, user_id, organization_id, self_service, created_at, expiration_date,
	notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
	transition_job_id, reminder_job_ids, test_clock_id`

func scanTrial(row pgx.Row) (domain.Trial, error) {
	var t domain.Trial
	err := row.Scan(&t.ID, &t.UserID, &t.OrganizationID, &t.SelfService, &t.CreatedAt, &t.ExpirationDate,
		&t.Notes, &t.ExpiredDate, &t.DeletedDate, &t.UpgradedDate, &t.GraceEndsAt, &t.ScheduleGen, &t.State,
		&t.TransitionJobID, &t.ReminderJobIDs, &t.TestClockID)
	return t, notFound(err)
}

func collectTrials(rows pgx.Rows, err error) ([]domain.Trial, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Trial, error) { return scanTrial(row) })
}

// InsertTrialParams are the columns a new trial is created with.
type InsertTrialParams struct {
	UserID         int64
	OrganizationID int64
	SelfService    bool
	ExpirationDate time.Time
	Notes          *string
	Details        domain.TrialDetails
	Now            time.Time
	// TestClockID puts the trial on a test clock (nil: real time).
	TestClockID *int64
}

// InsertTrial creates an active trial. A second self-service trial of one
// user surfaces as a UniqueViolation naming TrialsOneSelfServiceKey.
func (q *Queries) InsertTrial(ctx context.Context, p InsertTrialParams) (domain.Trial, error) {
	var utm []byte
	if p.Details.UTMParams != nil {
		var err error
		if utm, err = json.Marshal(p.Details.UTMParams); err != nil {
			return domain.Trial{}, fmt.Errorf("encoding utm params: %w", err)
		}
	}
	d := p.Details
	t, err := scanTrial(q.db.QueryRow(ctx, `
		INSERT INTO trials (user_id, organization_id, self_service, created_at, expiration_date, notes,
			organization_name, use_case, user_has_ml_models_in_production, company_name, company_size,
			country, state_or_province, job_title, utm_params, test_clock_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		RETURNING `+trialColumns,
		p.UserID, p.OrganizationID, p.SelfService, p.Now, p.ExpirationDate, p.Notes,
		d.OrganizationName, d.UseCase, d.UserHasMLModelsInProduction, d.CompanyName, d.CompanySize,
		d.Country, d.StateOrProvince, d.JobTitle, utm, p.TestClockID))
	if err != nil {
		return domain.Trial{}, fmt.Errorf("inserting trial: %w", err)
	}
	return t, nil
}

// TrialByID returns the trial with id.
func (q *Queries) TrialByID(ctx context.Context, id int64) (domain.Trial, error) {
	return scanTrial(q.db.QueryRow(ctx, `SELECT `+trialColumns+` FROM trials WHERE id = $1`, id))
}

// TrialByIDForUpdate returns the trial with id and locks it until the
// transaction ends: every transition of a trial runs under this lock, which
// is what makes a duplicate or concurrent job harmless.
func (q *Queries) TrialByIDForUpdate(ctx context.Context, id int64) (domain.Trial, error) {
	return scanTrial(q.db.QueryRow(ctx, `SELECT `+trialColumns+` FROM trials WHERE id = $1 FOR UPDATE`, id))
}

// TrialsOfOrganizationForUpdate locks and returns an organization's trials,
// in id order.
func (q *Queries) TrialsOfOrganizationForUpdate(ctx context.Context, orgID int64) ([]domain.Trial, error) {
	trials, err := collectTrials(q.db.Query(ctx, `
		SELECT `+trialColumns+` FROM trials WHERE organization_id = $1 ORDER BY id FOR UPDATE`, orgID))
	if err != nil {
		return nil, fmt.Errorf("locking trials of organization %d: %w", orgID, err)
	}
	return trials, nil
}

// TrialsOfUser returns a user's trials, newest first.
func (q *Queries) TrialsOfUser(ctx context.Context, userID int64) ([]domain.Trial, error) {
	trials, err := collectTrials(q.db.Query(ctx, `
		SELECT `+trialColumns+` FROM trials WHERE user_id = $1 ORDER BY id DESC`, userID))
	if err != nil {
		return nil, fmt.Errorf("listing trials of user %d: %w", userID, err)
	}
	return trials, nil
}

// TrialDates are the lifecycle columns a transition writes.
type TrialDates struct {
	ExpirationDate time.Time
	ExpiredDate    *time.Time
	DeletedDate    *time.Time
	UpgradedDate   *time.Time
	GraceEndsAt    *time.Time
}

// SetTrialDates writes a trial's lifecycle dates and returns the state that
// follows from them.
func (q *Queries) SetTrialDates(ctx context.Context, id int64, d TrialDates) (domain.State, error) {
	var state domain.State
	err := q.db.QueryRow(ctx, `
		UPDATE trials SET expiration_date = $2, expired_date = $3, deleted_date = $4,
			upgraded_date = $5, grace_ends_at = $6
		WHERE id = $1 RETURNING state`, id, d.ExpirationDate, d.ExpiredDate, d.DeletedDate, d.UpgradedDate, d.GraceEndsAt).Scan(&state)
	if err != nil {
		return "", fmt.Errorf("updating dates of trial %d: %w", id, err)
	}
	return state, nil
}

// SetTrialNotes replaces a trial's notes.
func (q *Queries) SetTrialNotes(ctx context.Context, id int64, notes *string) error {
	if _, err := q.db.Exec(ctx, `UPDATE trials SET notes = $2 WHERE id = $1`, id, notes); err != nil {
		return fmt.Errorf("updating notes of trial %d: %w", id, err)
	}
	return nil
}

// SetTrialJobs records the River jobs of a trial's current schedule.
func (q *Queries) SetTrialJobs(ctx context.Context, id int64, transition *int64, reminders []int64) error {
	if reminders == nil {
		reminders = []int64{}
	}
	_, err := q.db.Exec(ctx, `UPDATE trials SET transition_job_id = $2, reminder_job_ids = $3 WHERE id = $1`, id, transition, reminders)
	if err != nil {
		return fmt.Errorf("recording jobs of trial %d: %w", id, err)
	}
	return nil
}

// BumpScheduleGen starts a new schedule generation for the trial, making
// every job of the previous one stale, and returns it.
func (q *Queries) BumpScheduleGen(ctx context.Context, id int64) (int64, error) {
	var gen int64
	err := q.db.QueryRow(ctx, `UPDATE trials SET schedule_gen = schedule_gen + 1 WHERE id = $1 RETURNING schedule_gen`, id).Scan(&gen)
	if err != nil {
		return 0, fmt.Errorf("bumping schedule generation of trial %d: %w", id, err)
	}
	return gen, nil
}

// CountTrialsByState counts trials in each state, for the state gauges,
// from the counters the trials triggers keep (migrations 00002 to 00004 and
// 00008): a few rows per backend, however many trials there are. With
// domain.StatePurged, the trials purged so far.
func (q *Queries) CountTrialsByState(ctx context.Context) (map[domain.State]int64, error) {
	rows, err := q.db.Query(ctx, `SELECT state, sum(n)::bigint FROM trial_state_counts GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("counting trials by state: %w", err)
	}
	counts := make(map[domain.State]int64, len(domain.States)+1)
	for _, s := range append(domain.States, domain.StatePurged) {
		counts[s] = 0
	}
	var state domain.State
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		counts[state] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("counting trials by state: %w", err)
	}
	return counts, nil
}

// FoldTrialStateCounts folds the counter shards of backends that have gone
// into one, so the counters stay a few rows per live backend, and returns
// how many rows it folded. It waits on no lock a transition holds.
func (q *Queries) FoldTrialStateCounts(ctx context.Context) (int64, error) {
	var n int64
	if err := q.db.QueryRow(ctx, `SELECT trial_state_counts_fold()`).Scan(&n); err != nil {
		return 0, fmt.Errorf("folding trial state counters: %w", err)
	}
	return n, nil
}

// DueTrial is a real-time trial whose next transition is due by some time,
// for the reconciler to check against the jobs River holds. A test clock's
// trials are due by their clock, which the reconciler does not watch.
type DueTrial struct {
	ID          int64
	ScheduleGen int64
	State       domain.State
	Due         time.Time
}

// TrialsDueBy returns, in (due, id) order after the cursor, up to limit
// trials whose next transition (expiry of an active trial, deletion of an
// expired one, purge of a deleted one) is due by the given time. Each part
// walks an index, so a sweep reads only what is near due, not the table.
func (q *Queries) TrialsDueBy(ctx context.Context, by time.Time, afterDue time.Time, afterID int64, limit int) ([]DueTrial, error) {
	rows, err := q.db.Query(ctx, `
		SELECT id, schedule_gen, state, due FROM (
			(SELECT id, schedule_gen, state, expiration_date AS due FROM trials
			 WHERE state = 'active' AND expiration_date <= $1 AND test_clock_id IS NULL
			   AND (expiration_date, id) > ($2, $3)
			 ORDER BY expiration_date, id LIMIT $4)
			UNION ALL
			(SELECT id, schedule_gen, state, grace_ends_at FROM trials
			 WHERE state = 'expired' AND grace_ends_at <= $1 AND test_clock_id IS NULL
			   AND (grace_ends_at, id) > ($2, $3)
			 ORDER BY grace_ends_at, id LIMIT $4)
			UNION ALL
			(SELECT t.id, t.schedule_gen, t.state, o.purge_at FROM organizations o JOIN trials t ON t.organization_id = o.id
			 WHERE o.purge_at <= $1 AND t.state = 'deleted' AND t.test_clock_id IS NULL
			   AND (o.purge_at, t.id) > ($2, $3)
			 ORDER BY o.purge_at, t.id LIMIT $4)
		) due ORDER BY due, id LIMIT $4`, by, afterDue, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing due trials: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DueTrial, error) {
		var d DueTrial
		err := row.Scan(&d.ID, &d.ScheduleGen, &d.State, &d.Due)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing due trials: %w", err)
	}
	return due, nil
}

// ListTrials returns up to limit trials, newest first, optionally only those
// in state and of userID (0: any user).
func (q *Queries) ListTrials(ctx context.Context, state domain.State, userID int64, limit int) ([]domain.Trial, error) {
	trials, err := collectTrials(q.db.Query(ctx, `
		SELECT `+trialColumns+` FROM trials
		WHERE ($1 = '' OR state = $1) AND ($2 = 0 OR user_id = $2)
		ORDER BY id DESC LIMIT $3`, state, userID, limit))
	if err != nil {
		return nil, fmt.Errorf("listing trials: %w", err)
	}
	return trials, nil
}

// TrialPositionByID reads a trial's state and schedule generation, unlocked.
func (q *Queries) TrialPositionByID(ctx context.Context, id int64) (domain.Position, error) {
	var s domain.Position
	err := q.db.QueryRow(ctx, `SELECT state, schedule_gen FROM trials WHERE id = $1`, id).Scan(&s.State, &s.ScheduleGen)
	return s, notFound(err)
}

// ClaimDueActiveTrials locks and returns up to limit active trials due by
// `by`, longest due first. Rows another transaction holds are skipped
// rather than waited for, so sweeps at the same time share the due trials
// between them and never block one another, nor a trial's own job. Only
// real-time trials are claimed: a test clock's trials are due by their
// clock.
func (q *Queries) ClaimDueActiveTrials(ctx context.Context, by time.Time, limit int) ([]domain.Trial, error) {
	trials, err := collectTrials(q.db.Query(ctx, `
		SELECT `+trialColumns+` FROM trials
		WHERE state = 'active' AND expiration_date <= $1 AND test_clock_id IS NULL
		ORDER BY expiration_date LIMIT $2
		FOR UPDATE SKIP LOCKED`, by, limit))
	if err != nil {
		return nil, fmt.Errorf("claiming due trials: %w", err)
	}
	return trials, nil
}

// ExpireTrials marks each trial ids[i] expired at `at`, its grace period
// ending at graceEndsAt, with its Delete job jobIDs[i] as its next
// transition and no reminders, in one statement, so each trial gets one new
// row version, not one for its dates and another for its jobs.
func (q *Queries) ExpireTrials(ctx context.Context, ids, jobIDs []int64, at, graceEndsAt time.Time) error {
	if _, err := q.db.Exec(ctx, `
		UPDATE trials t SET expired_date = $3, grace_ends_at = $4, transition_job_id = u.job_id, reminder_job_ids = '{}'
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, job_id) WHERE t.id = u.id`, ids, jobIDs, at, graceEndsAt); err != nil {
		return fmt.Errorf("expiring %d trials: %w", len(ids), err)
	}
	return nil
}

// TrialPurgedAt returns when the trial with id was purged, from its
// history, which outlives the trial's row; ErrNotFound when no trial with
// that id was ever purged.
func (q *Queries) TrialPurgedAt(ctx context.Context, id int64) (time.Time, error) {
	var at time.Time
	err := q.db.QueryRow(ctx, `SELECT at FROM trial_events WHERE trial_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1`,
		id, domain.EventPurged).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading purge of trial %d: %w", id, err)
	}
	return at, nil
}
