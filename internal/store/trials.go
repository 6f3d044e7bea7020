package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// TrialsOneSelfServiceKey is the unique index that gives each user one
// self-service trial.
const TrialsOneSelfServiceKey = "trials_one_self_service_per_user"

// trialRow is any of the rows sqlc writes for the trial columns: each
// holds the domain's Trial, field for field, so it converts to one.
type trialRow interface {
	dbsqlc.InsertTrialRow | dbsqlc.TrialByIDRow | dbsqlc.TrialByIDForUpdateRow |
		dbsqlc.TrialsOfOrganizationForUpdateRow | dbsqlc.TrialsOfUserRow | dbsqlc.ListTrialsRow |
		dbsqlc.ClaimDueActiveTrialsRow
}

// trialOf maps any of the trial rows.
func trialOf[R trialRow](r R) domain.Trial { return domain.Trial(r) }

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
	row, err := q.gen.InsertTrial(ctx, dbsqlc.InsertTrialParams{
		UserID: p.UserID, OrganizationID: p.OrganizationID, SelfService: p.SelfService, CreatedAt: p.Now,
		ExpirationDate: p.ExpirationDate, Notes: p.Notes, OrganizationName: d.OrganizationName, UseCase: d.UseCase,
		UserHasMlModelsInProduction: d.UserHasMLModelsInProduction, CompanyName: d.CompanyName,
		CompanySize: d.CompanySize, Country: d.Country, StateOrProvince: d.StateOrProvince, JobTitle: d.JobTitle,
		UtmParams: utm, TestClockID: p.TestClockID})
	if err != nil {
		return domain.Trial{}, fmt.Errorf("inserting trial: %w", err)
	}
	return trialOf(row), nil
}

// TrialByID returns the trial with id.
func (q *Queries) TrialByID(ctx context.Context, id int64) (domain.Trial, error) {
	return mapRow(trialOf[dbsqlc.TrialByIDRow])(q.gen.TrialByID(ctx, id))
}

// TrialByIDForUpdate returns the trial with id and locks it until the
// transaction ends: every transition of a trial runs under this lock, which
// is what makes a duplicate or concurrent job harmless.
func (q *Queries) TrialByIDForUpdate(ctx context.Context, id int64) (domain.Trial, error) {
	return mapRow(trialOf[dbsqlc.TrialByIDForUpdateRow])(q.gen.TrialByIDForUpdate(ctx, id))
}

// TrialsOfOrganizationForUpdate locks and returns an organization's trials,
// in id order.
func (q *Queries) TrialsOfOrganizationForUpdate(ctx context.Context, orgID int64) ([]domain.Trial, error) {
	rows, err := q.gen.TrialsOfOrganizationForUpdate(ctx, orgID)
	return mapRows(rows, err, fmt.Sprintf("locking trials of organization %d", orgID), trialOf)
}

// TrialsOfUser returns a user's trials, newest first.
func (q *Queries) TrialsOfUser(ctx context.Context, userID int64) ([]domain.Trial, error) {
	rows, err := q.gen.TrialsOfUser(ctx, userID)
	return mapRows(rows, err, fmt.Sprintf("listing trials of user %d", userID), trialOf)
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
	state, err := q.gen.SetTrialDates(ctx, dbsqlc.SetTrialDatesParams{ID: id, ExpirationDate: d.ExpirationDate,
		ExpiredDate: d.ExpiredDate, DeletedDate: d.DeletedDate, UpgradedDate: d.UpgradedDate, GraceEndsAt: d.GraceEndsAt})
	if err != nil {
		return "", fmt.Errorf("updating dates of trial %d: %w", id, err)
	}
	return state, nil
}

// SetTrialNotes replaces a trial's notes.
func (q *Queries) SetTrialNotes(ctx context.Context, id int64, notes *string) error {
	if err := q.gen.SetTrialNotes(ctx, dbsqlc.SetTrialNotesParams{ID: id, Notes: notes}); err != nil {
		return fmt.Errorf("updating notes of trial %d: %w", id, err)
	}
	return nil
}

// SetTrialJobs records the River jobs of a trial's current schedule.
func (q *Queries) SetTrialJobs(ctx context.Context, id int64, transition *int64, reminders []int64) error {
	if reminders == nil {
		reminders = []int64{}
	}
	err := q.gen.SetTrialJobs(ctx, dbsqlc.SetTrialJobsParams{ID: id, TransitionJobID: transition, ReminderJobIDs: reminders})
	if err != nil {
		return fmt.Errorf("recording jobs of trial %d: %w", id, err)
	}
	return nil
}

// BumpScheduleGen starts a new schedule generation for the trial, making
// every job of the previous one stale, and returns it.
func (q *Queries) BumpScheduleGen(ctx context.Context, id int64) (int64, error) {
	gen, err := q.gen.BumpScheduleGen(ctx, id)
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
	rows, err := q.gen.CountTrialsByState(ctx)
	if err != nil {
		return nil, fmt.Errorf("counting trials by state: %w", err)
	}
	counts := make(map[domain.State]int64, len(domain.States)+1)
	for _, s := range append(domain.States, domain.StatePurged) {
		counts[s] = 0
	}
	for _, r := range rows {
		counts[domain.State(r.State)] = r.N
	}
	return counts, nil
}

// FoldTrialStateCounts folds the counter shards of backends that have gone
// into one, so the counters stay a few rows per live backend, and returns
// how many rows it folded. It waits on no lock a transition holds.
func (q *Queries) FoldTrialStateCounts(ctx context.Context) (int64, error) {
	n, err := q.gen.FoldTrialStateCounts(ctx)
	if err != nil {
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
	rows, err := q.gen.TrialsDueBy(ctx, dbsqlc.TrialsDueByParams{DueBy: by, AfterDue: afterDue, AfterID: afterID, MaxTrials: int32(limit)})
	return mapRows(rows, err, "listing due trials", func(r dbsqlc.TrialsDueByRow) DueTrial { return DueTrial(r) })
}

// ListTrials returns up to limit trials, newest first, optionally only those
// in state and of userID (0: any user).
func (q *Queries) ListTrials(ctx context.Context, state domain.State, userID int64, limit int) ([]domain.Trial, error) {
	rows, err := q.gen.ListTrials(ctx, dbsqlc.ListTrialsParams{State: string(state), UserID: userID, MaxTrials: int32(limit)})
	return mapRows(rows, err, "listing trials", trialOf)
}

// TrialPositionByID reads a trial's state and schedule generation, unlocked.
func (q *Queries) TrialPositionByID(ctx context.Context, id int64) (domain.Position, error) {
	p, err := q.gen.TrialPositionByID(ctx, id)
	return domain.Position(p), notFound(err)
}

// ClaimDueActiveTrials locks and returns up to limit active trials due by
// `by`, longest due first. Rows another transaction holds are skipped
// rather than waited for, so sweeps at the same time share the due trials
// between them and never block one another, nor a trial's own job. Only
// real-time trials are claimed: a test clock's trials are due by their
// clock.
func (q *Queries) ClaimDueActiveTrials(ctx context.Context, by time.Time, limit int) ([]domain.Trial, error) {
	rows, err := q.gen.ClaimDueActiveTrials(ctx, dbsqlc.ClaimDueActiveTrialsParams{DueBy: by, MaxTrials: int32(limit)})
	return mapRows(rows, err, "claiming due trials", trialOf)
}

// ExpireTrials marks the trials expired, each with its Delete job as its
// next transition and its first notice's job as its only reminder, in one
// statement, so each trial gets one new row version, not one for its dates
// and another for its jobs.
func (q *Queries) ExpireTrials(ctx context.Context, e ExpiredTrials) error {
	if err := q.gen.ExpireTrials(ctx, dbsqlc.ExpireTrialsParams{
		Ids: e.IDs, JobIds: e.JobIDs, NoticeJobIds: e.NoticeJobIDs, ExpiredDate: &e.At, GraceEndsAt: &e.GraceEndsAt}); err != nil {
		return fmt.Errorf("expiring %d trials: %w", len(e.IDs), err)
	}
	return nil
}

// ExpiredTrials are trials expired at once: IDs[i] expired At, its grace
// period ending GraceEndsAt, its Delete job JobIDs[i] and its first
// notice's job NoticeJobIDs[i] (0: none).
type ExpiredTrials struct {
	IDs, JobIDs, NoticeJobIDs []int64
	At, GraceEndsAt           time.Time
}

// ReplaceReminderJob swaps a trial's recorded job done for next (none:
// forgets done): a notice job hands over to the next notice.
func (q *Queries) ReplaceReminderJob(ctx context.Context, trialID, done int64, next []int64) error {
	if next == nil {
		next = []int64{}
	}
	if err := q.gen.ReplaceReminderJob(ctx, dbsqlc.ReplaceReminderJobParams{ID: trialID, Done: done, Next: next}); err != nil {
		return fmt.Errorf("recording trial %d's next notice: %w", trialID, err)
	}
	return nil
}

// TrialPurgedAt returns when the trial with id was purged, from its
// history, which outlives the trial's row; ErrNotFound when no trial with
// that id was ever purged.
func (q *Queries) TrialPurgedAt(ctx context.Context, id int64) (time.Time, error) {
	at, err := q.gen.TrialPurgedAt(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading purge of trial %d: %w", id, err)
	}
	return at, nil
}
