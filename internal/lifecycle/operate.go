package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/store"
)

// ListFilter narrows a trial listing.
type ListFilter struct {
	State  domain.State // "" for any
	UserID int64        // 0 for any
	Limit  int
}

// List returns trials, newest first.
func (s *Service) List(ctx context.Context, f ListFilter) ([]domain.Trial, error) {
	if f.State != "" && !slices.Contains(domain.States, f.State) {
		return nil, apperr.InvalidField("state", "state must be active, expired, deleted or upgraded")
	}
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 100
	}
	return store.New(s.pool).ListTrials(ctx, f.State, f.UserID, f.Limit)
}

// PendingJob is a job of a trial's schedule that has not run yet.
type PendingJob struct {
	ID          int64
	Kind        string
	State       string
	ScheduledAt time.Time
	Attempt     int
}

// PendingJobs returns the not-yet-run jobs of a trial's schedule (and its
// organization's purge), from River.
func (s *Service) PendingJobs(ctx context.Context, t domain.Trial) ([]PendingJob, error) {
	ids := append([]int64{}, t.ReminderJobIDs...)
	if t.TransitionJobID != nil {
		ids = append(ids, *t.TransitionJobID)
	}
	if org, err := store.New(s.pool).OrganizationByID(ctx, t.OrganizationID); err == nil && org.PurgeJobID != nil {
		ids = append(ids, *org.PurgeJobID)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	res, err := s.jobs.JobList(ctx, river.NewJobListParams().IDs(ids...).
		States(store.LiveJobStates...).First(len(ids)))
	if err != nil {
		return nil, fmt.Errorf("listing jobs of trial %d: %w", t.ID, err)
	}
	out := make([]PendingJob, 0, len(res.Jobs))
	for _, j := range res.Jobs {
		out = append(out, PendingJob{ID: j.ID, Kind: j.Kind, State: string(j.State), ScheduledAt: j.ScheduledAt, Attempt: j.Attempt})
	}
	return out, nil
}

// UpcomingTransitions returns what falls due within the next within.
func (s *Service) UpcomingTransitions(ctx context.Context, within time.Duration) ([]domain.UpcomingCount, error) {
	if within <= 0 || within > 366*24*time.Hour {
		return nil, apperr.InvalidField("within", "within must be a positive duration of at most a year, such as 24h")
	}
	now := s.now()
	kinds := []string{jobargs.KindRemindTrial, jobargs.KindExpireTrial, jobargs.KindDeleteTrial, jobargs.KindPurgeOrganization}
	return store.New(s.pool).UpcomingJobs(ctx, kinds, now.Add(within))
}

// PurgedTrials returns a page of the purged trials, by purge date then id,
// starting after f.After (whose ExpirationDate is a purge date); a query
// that is a trial id narrows them to it, any other matches none, since a
// purged trial's user and organization are gone. f.State is ignored.
func (s *Service) PurgedTrials(ctx context.Context, f domain.TrialSearch) ([]domain.PurgedTrial, error) {
	if f.Limit <= 0 || f.Limit > maxSearchPage {
		f.Limit = 50
	}
	var id *int64
	if q := strings.TrimSpace(f.Query); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil {
			return nil, nil
		}
		id = &n
	}
	return store.New(s.pool).PurgedTrials(ctx, id, f.After, f.Limit)
}

// maxSearchPage bounds a page of Search.
const maxSearchPage = 200

// Search returns a page of the trials f names, by expiration date then id,
// starting after f.After (store.SearchTrials says how it stays fast at any
// size).
func (s *Service) Search(ctx context.Context, f domain.TrialSearch) ([]domain.TrialListing, error) {
	if f.State != "" && !slices.Contains(domain.States, f.State) {
		return nil, apperr.InvalidField("state", "state must be active, expired, deleted or upgraded")
	}
	if f.Limit <= 0 || f.Limit > maxSearchPage {
		f.Limit = 50
	}
	return store.New(s.pool).SearchTrials(ctx, f)
}
