package jobs

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/metrics"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

var t0 = time.Date(2026, 1, 10, 8, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// workFunc runs one existing job through its real worker.
type workFunc func(ctx context.Context, tb testing.TB, tx pgx.Tx, job *rivertype.JobRow) (*rivertest.WorkResult, error)

type testBundle struct {
	pool    *pgxpool.Pool
	clock   *clock.Stub
	client  *river.Client[pgx.Tx]
	svc     *lifecycle.Service
	admin   domain.Actor
	work    map[string]workFunc
	trialID int64
	orgID   int64
	metrics *metrics.Metrics
}

// setup gives a test the real lifecycle service, the real workers and a
// River client on its own database, all on one stubbed clock. Jobs are run
// by runDue through rivertest, which works each job River would consider
// due, so a test moves through months of a trial's life without waiting.
func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := testdb.New(t)
	stub := clock.NewStub(t0)
	driver := riverpgxv5.New(pool)
	rc := &river.Config{Test: river.TestConfig{Time: stub}}
	client, err := river.NewClient(driver, rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Lifecycle
	// No sweep runs here: these tests drive the trial's own jobs, so each
	// expiry job is due at its date rather than a backstop later.
	cfg.ExpirePoll = 0
	svc := lifecycle.New(lifecycle.Deps{Pool: pool, Jobs: client, Clock: stub, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	m := metrics.New()
	r := reporter{clock: stub, obs: m}
	b := &testBundle{pool: pool, clock: stub, client: client, svc: svc, metrics: m}
	b.work = map[string]workFunc{
		jobargs.KindExpireTrial:       rivertest.NewWorker(t, driver, rc, &ExpireTrialWorker{svc: svc, r: r}).WorkJob,
		jobargs.KindRemindTrial:       rivertest.NewWorker(t, driver, rc, &RemindTrialWorker{svc: svc, r: r}).WorkJob,
		jobargs.KindDeleteTrial:       rivertest.NewWorker(t, driver, rc, &DeleteTrialWorker{svc: svc, r: r}).WorkJob,
		jobargs.KindPurgeOrganization: rivertest.NewWorker(t, driver, rc, &PurgeOrganizationWorker{svc: svc, r: r}).WorkJob,
	}

	u, err := store.New(pool).InsertUser(context.Background(), store.InsertUserParams{
		Username: "admin", Email: "admin@acme.example", IsAdmin: true, Now: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.admin = domain.Actor{UserID: u.ID, Admin: true}
	started, err := svc.StartTrial(context.Background(), b.admin,
		lifecycle.StartTrialRequest{ExpirationDate: ptr(t0.Add(10 * day))}, "request:start")
	if err != nil {
		t.Fatal(err)
	}
	b.trialID, b.orgID = started.TrialID, started.OrganizationID
	return b
}

func ptr[T any](v T) *T { return &v }

var liveStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStatePending,
}

// runDue works, oldest first, every job whose time has come on the stubbed
// clock, until none is left (a job may enqueue one that is due at once).
func (b *testBundle) runDue(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		res, err := b.client.JobList(ctx, river.NewJobListParams().States(liveStates...).
			OrderBy(river.JobListOrderByScheduledAt, river.SortOrderAsc).First(100))
		if err != nil {
			t.Fatal(err)
		}
		var due *rivertype.JobRow
		for _, j := range res.Jobs {
			if !j.ScheduledAt.After(b.clock.Now()) {
				due = j
				break
			}
		}
		if due == nil {
			return
		}
		// River's fetch commits the job as running before the worker starts;
		// rivertest only marks it inside tx, so do what the fetch does.
		if _, err := b.pool.Exec(ctx, `UPDATE river_job SET state = 'running' WHERE id = $1`, due.ID); err != nil {
			t.Fatal(err)
		}
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		result, err := b.work[due.Kind](ctx, t, tx, due)
		if err != nil {
			t.Fatalf("working %s job %d: %v", due.Kind, due.ID, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if result.EventKind != river.EventKindJobCompleted {
			t.Fatalf("%s job %d ended %s: %v", due.Kind, due.ID, result.EventKind, result.Job.Errors)
		}
	}
	t.Fatal("jobs keep becoming due: a loop?")
}

// pendingJobs lists the kinds of the live jobs of the test's trial and
// organization, sorted, with when each is due.
func (b *testBundle) pendingJobs(t *testing.T) (kinds []string, due map[string]time.Time) {
	t.Helper()
	res, err := b.client.JobList(context.Background(), river.NewJobListParams().States(liveStates...).First(100).
		Where("(args @> @trial::jsonb OR args @> @org::jsonb)", river.NamedArgs{
			"trial": `{"trial_id": ` + strconv.FormatInt(b.trialID, 10) + `}`,
			"org":   `{"organization_id": ` + strconv.FormatInt(b.orgID, 10) + `}`,
		}))
	if err != nil {
		t.Fatal(err)
	}
	due = map[string]time.Time{}
	for _, j := range res.Jobs {
		kinds = append(kinds, j.Kind)
		due[j.Kind] = j.ScheduledAt
	}
	slices.Sort(kinds)
	return kinds, due
}

func (b *testBundle) eventKinds(t *testing.T) []string {
	t.Helper()
	events, err := b.svc.Events(context.Background(), b.trialID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

type step struct {
	name string
	// do acts on the trial; the error it returns is checked against wantErr.
	do      func(t *testing.T, b *testBundle) error
	wantErr apperr.Code
	// wantState is the trial's state afterwards; "purged" means it is gone.
	wantState domain.State
	// wantNewEvents are the kinds the step appended to the history.
	wantNewEvents []string
	// wantJobs are the kinds of the live jobs left, sorted.
	wantJobs []string
	// check makes further assertions.
	check func(t *testing.T, b *testBundle, trial domain.Trial)
}

func advance(d time.Duration) func(*testing.T, *testBundle) error {
	return func(t *testing.T, b *testBundle) error {
		b.clock.Advance(d)
		b.runDue(t)
		return nil
	}
}

// moveTo sets the expiration date relative to the current (stubbed) time.
func moveTo(fromNow time.Duration) func(*testing.T, *testBundle) error {
	return func(t *testing.T, b *testBundle) error {
		err := b.svc.UpdateTrial(context.Background(), b.admin, b.trialID,
			lifecycle.UpdateTrialRequest{ExpirationDate: ptr(b.clock.Now().Add(fromNow))}, "request:update")
		b.runDue(t)
		return err
	}
}

func moveToDate(d time.Time) func(*testing.T, *testBundle) error {
	return func(t *testing.T, b *testBundle) error {
		err := b.svc.UpdateTrial(context.Background(), b.admin, b.trialID,
			lifecycle.UpdateTrialRequest{ExpirationDate: &d}, "request:update")
		b.runDue(t)
		return err
	}
}

func upgrade(t *testing.T, b *testBundle) error {
	return b.svc.Upgrade(context.Background(), b.admin, b.trialID, "request:upgrade")
}

func restore(t *testing.T, b *testBundle) error {
	err := b.svc.RestoreOrganization(context.Background(), b.admin, b.orgID, "request:restore")
	b.runDue(t)
	return err
}

func deleteNow(t *testing.T, b *testBundle) error {
	return b.svc.DeleteTrialNow(context.Background(), b.admin, b.trialID, "request:delete")
}

func deleteOrg(full bool) func(*testing.T, *testBundle) error {
	return func(t *testing.T, b *testBundle) error {
		return b.svc.DeleteOrganization(context.Background(), b.admin, b.orgID, full, "request:delete-org")
	}
}

func dueIn(kind string, d time.Duration) func(*testing.T, *testBundle, domain.Trial) {
	return func(t *testing.T, b *testBundle, _ domain.Trial) {
		t.Helper()
		_, due := b.pendingJobs(t)
		if want := b.clock.Now().Add(d); !due[kind].Equal(want) {
			t.Errorf("%s due at %v, want %v", kind, due[kind], want)
		}
	}
}

func orgDeleted(want bool) func(*testing.T, *testBundle, domain.Trial) {
	return func(t *testing.T, b *testBundle, _ domain.Trial) {
		t.Helper()
		var deleted, enterprise bool
		var members int
		err := b.pool.QueryRow(context.Background(), `
			SELECT o.deleted_at IS NOT NULL, o.enterprise_features,
			       (SELECT count(*) FROM organization_members m WHERE m.organization_id = o.id AND m.deleted_at IS NULL)
			FROM organizations o WHERE o.id = $1`, b.orgID).Scan(&deleted, &enterprise, &members)
		if err != nil {
			t.Fatal(err)
		}
		if deleted != want || (members == 0) != want {
			t.Errorf("organization deleted=%v with %d live members, want deleted=%v", deleted, members, want)
		}
	}
}

const (
	created   = domain.EventCreated
	willEnd   = domain.EventWillEnd
	expired   = domain.EventExpired
	extended  = domain.EventExtended
	shortened = domain.EventShortened
	deleted   = domain.EventDeleted
	restored  = domain.EventRestored
	purged    = domain.EventPurged
	upgraded  = domain.EventUpgraded

	jExpire = jobargs.KindExpireTrial
	jRemind = jobargs.KindRemindTrial
	jDelete = jobargs.KindDeleteTrial
	jPurge  = jobargs.KindPurgeOrganization
)

// Every path of the lifecycle, step by step, on a trial created at t0 that
// expires 10 days later (reminder 72 h before, 30 days' grace, purge 30 days
// after deletion): the dates, the history and the jobs left in River after
// each step.
func TestLifecyclePaths(t *testing.T) {
	t.Parallel()

	paths := []struct {
		name  string
		steps []step
	}{
		{"active → expired → deleted → restored → deleted → purged", []step{
			{name: "reminder 72h before expiry", do: advance(7 * day), wantState: domain.StateActive,
				wantNewEvents: []string{willEnd}, wantJobs: []string{jExpire}},
			{name: "expires at its date", do: advance(3 * day), wantState: domain.StateExpired,
				wantNewEvents: []string{expired}, wantJobs: []string{jDelete}, check: dueIn(jDelete, 30*day)},
			{name: "grace period not over", do: advance(30*day - time.Minute), wantState: domain.StateExpired, wantJobs: []string{jDelete}},
			{name: "deleted after the grace period", do: advance(time.Minute), wantState: domain.StateDeleted,
				wantNewEvents: []string{deleted}, wantJobs: []string{jPurge}, check: orgDeleted(true)},
			{name: "restored before purge", do: restore, wantState: domain.StateExpired,
				wantNewEvents: []string{restored}, wantJobs: []string{jDelete},
				check: func(t *testing.T, b *testBundle, tr domain.Trial) {
					dueIn(jDelete, 30*day)(t, b, tr) // a fresh grace period, never an immediate Delete
					orgDeleted(false)(t, b, tr)
				}},
			{name: "deleted again after the fresh grace period", do: advance(30 * day), wantState: domain.StateDeleted,
				wantNewEvents: []string{deleted}, wantJobs: []string{jPurge}},
			{name: "purged", do: advance(30 * day), wantState: "purged", wantNewEvents: []string{purged}},
			{name: "restore after purge", do: restore, wantErr: apperr.NotFound, wantState: "purged"},
		}},
		{"active → upgraded", []step{
			{name: "upgrade", do: upgrade, wantState: domain.StateUpgraded, wantNewEvents: []string{upgraded},
				check: func(t *testing.T, b *testBundle, tr domain.Trial) {
					var trial, enterprise bool
					if err := b.pool.QueryRow(context.Background(), "SELECT is_trial, enterprise_features FROM organizations WHERE id = $1", b.orgID).Scan(&trial, &enterprise); err != nil || trial || !enterprise {
						t.Errorf("organization is_trial=%v enterprise=%v (%v), want a full enterprise", trial, enterprise, err)
					}
				}},
			{name: "upgrade twice is harmless", do: upgrade, wantState: domain.StateUpgraded},
			{name: "nothing happens afterwards", do: advance(100 * day), wantState: domain.StateUpgraded},
			{name: "date of an upgraded trial is fixed", do: moveTo(day), wantErr: apperr.Conflict, wantState: domain.StateUpgraded},
		}},
		{"expired → extended → active → expired", []step{
			{name: "expires", do: advance(10 * day), wantState: domain.StateExpired,
				wantNewEvents: []string{willEnd, expired}, wantJobs: []string{jDelete}},
			{name: "extended inside the grace period", do: moveTo(5 * day), wantState: domain.StateActive,
				wantNewEvents: []string{extended}, wantJobs: []string{jExpire, jRemind},
				check: func(t *testing.T, b *testBundle, tr domain.Trial) {
					if tr.ExpiredDate != nil || tr.GraceEndsAt != nil {
						t.Errorf("re-activated trial keeps expiredDate %v", tr.ExpiredDate)
					}
					dueIn(jExpire, 5*day)(t, b, tr)
				}},
			// The new Expire job must not be refused as a duplicate of the
			// completed one: its generation differs.
			{name: "expires again at the new date", do: advance(5 * day), wantState: domain.StateExpired,
				wantNewEvents: []string{willEnd, expired}, wantJobs: []string{jDelete}},
		}},
		{"active → shortened → expired", []step{
			{name: "shortened to tomorrow", do: moveTo(day), wantState: domain.StateActive,
				wantNewEvents: []string{shortened}, wantJobs: []string{jExpire}}, // reminder time already past
			{name: "expires tomorrow", do: advance(day), wantState: domain.StateExpired,
				wantNewEvents: []string{expired}, wantJobs: []string{jDelete}},
		}},
		{"active → shortened into the past → expired now", []step{
			{name: "a date in the past expires it now", do: moveTo(-time.Hour), wantState: domain.StateExpired,
				wantNewEvents: []string{shortened, expired}, wantJobs: []string{jDelete}, check: dueIn(jDelete, 30*day)},
		}},
		{"extend, then shorten back to the first date → expired", []step{
			{name: "extend", do: moveToDate(t0.Add(15 * day)), wantState: domain.StateActive,
				wantNewEvents: []string{extended}, wantJobs: []string{jExpire, jRemind}},
			{name: "shorten back to the first date", do: moveToDate(t0.Add(10 * day)), wantState: domain.StateActive,
				wantNewEvents: []string{shortened}, wantJobs: []string{jExpire, jRemind}},
			{name: "expires at the first date", do: advance(10 * day), wantState: domain.StateExpired,
				wantNewEvents: []string{willEnd, expired}, wantJobs: []string{jDelete}},
		}},
		{"admin deletes an active trial now, then restores it", []step{
			{name: "delete now", do: deleteNow, wantState: domain.StateDeleted,
				wantNewEvents: []string{deleted}, wantJobs: []string{jPurge}, check: dueIn(jPurge, 30*day)},
			{name: "upgrading a deleted trial is refused", do: upgrade, wantErr: apperr.Conflict, wantState: domain.StateDeleted, wantJobs: []string{jPurge}},
			{name: "extending a deleted trial is refused", do: moveTo(day), wantErr: apperr.Conflict, wantState: domain.StateDeleted, wantJobs: []string{jPurge}},
			{name: "restore brings it back active", do: restore, wantState: domain.StateActive,
				wantNewEvents: []string{restored}, wantJobs: []string{jExpire, jRemind}, check: orgDeleted(false)},
		}},
		{"organization soft-deleted without purge, then fully", []step{
			{name: "soft delete", do: deleteOrg(false), wantState: domain.StateDeleted, wantNewEvents: []string{deleted}},
			{name: "no purge however long", do: advance(365 * day), wantState: domain.StateDeleted},
			{name: "soft delete twice is a conflict", do: deleteOrg(false), wantErr: apperr.Conflict, wantState: domain.StateDeleted},
			{name: "full deletion schedules the purge", do: deleteOrg(true), wantState: domain.StateDeleted,
				wantJobs: []string{jPurge}, check: dueIn(jPurge, 30*day)},
			{name: "purged", do: advance(30 * day), wantState: "purged", wantNewEvents: []string{purged}},
		}},
		{"expired trial upgraded", []step{
			{name: "expires", do: advance(10 * day), wantState: domain.StateExpired, wantNewEvents: []string{willEnd, expired}, wantJobs: []string{jDelete}},
			{name: "upgrade cancels the Delete", do: upgrade, wantState: domain.StateUpgraded, wantNewEvents: []string{upgraded}},
			{name: "nothing is deleted", do: advance(60 * day), wantState: domain.StateUpgraded, check: orgDeleted(false)},
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if strings.HasSuffix(p.name, "purged") {
				t.Cleanup(func() { checkTransitionMetrics(t, b) })
			}
			ctx := context.Background()
			history := []string{created}
			if kinds, _ := b.pendingJobs(t); !slices.Equal(kinds, []string{jExpire, jRemind}) {
				t.Fatalf("new trial has jobs %v, want expire and remind", kinds)
			}
			for _, s := range p.steps {
				err := s.do(t, b)
				if got := apperr.CodeOf(err); (err == nil) != (s.wantErr == "") || (err != nil && got != s.wantErr) {
					t.Fatalf("%s: err = %v, want %q", s.name, err, s.wantErr)
				}
				trial, err := b.svc.Trial(ctx, b.trialID)
				state := trial.State
				if apperr.CodeOf(err) == apperr.NotFound {
					state = "purged"
				} else if err != nil {
					t.Fatal(err)
				}
				if state != s.wantState {
					t.Fatalf("%s: state %s, want %s", s.name, state, s.wantState)
				}
				checkDates(t, s.name, trial)
				history = append(history, s.wantNewEvents...)
				if got := b.eventKinds(t); !slices.Equal(got, history) {
					t.Fatalf("%s: history %v, want %v", s.name, got, history)
				}
				if got, _ := b.pendingJobs(t); !slices.Equal(got, s.wantJobs) {
					t.Fatalf("%s: live jobs %v, want %v", s.name, got, s.wantJobs)
				}
				if s.check != nil {
					s.check(t, b, trial)
				}
			}
		})
	}
}

// checkDates asserts that the dates agree with the state, so the trial
// response shows nothing its history contradicts.
func checkDates(t *testing.T, step string, tr domain.Trial) {
	t.Helper()
	switch tr.State {
	case domain.StateActive:
		if tr.ExpiredDate != nil || tr.DeletedDate != nil || tr.UpgradedDate != nil {
			t.Errorf("%s: active trial with dates %+v", step, tr)
		}
	case domain.StateExpired:
		if tr.ExpiredDate == nil || tr.GraceEndsAt == nil || tr.DeletedDate != nil {
			t.Errorf("%s: expired trial with dates %+v", step, tr)
		}
	case domain.StateDeleted:
		if tr.DeletedDate == nil {
			t.Errorf("%s: deleted trial without deletedDate", step)
		}
	case domain.StateUpgraded:
		if tr.UpgradedDate == nil {
			t.Errorf("%s: upgraded trial without upgradedDate", step)
		}
	}
}

// Two admins upgrading, or an upgrade racing the Expire job: the trial ends
// up in one state with one event for what was applied.
func TestConcurrentTransitionsApplyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.clock.Advance(10 * day)
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- upgrade(t, b) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := b.svc.Expire(ctx, b.trialID, 1, "job:race")
		errs <- err
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	count := map[string]int{}
	for _, k := range b.eventKinds(t) {
		count[k]++
	}
	if count[upgraded] != 1 || count[expired] > 1 {
		t.Fatalf("events %v, want exactly one upgrade and at most one expiry", count)
	}
	if tr, _ := b.svc.Trial(ctx, b.trialID); tr.State != domain.StateUpgraded {
		t.Fatalf("state %s, want upgraded", tr.State)
	}
	if kinds, _ := b.pendingJobs(t); len(kinds) != 0 {
		t.Fatalf("jobs %v left after upgrade, want none", kinds)
	}
}

// Args written by this release decode; args of a future field-less version
// still decode (fields are only ever added).
func TestArgsDecodeAcrossVersions(t *testing.T) {
	t.Parallel()
	var args jobargs.ExpireTrial
	if err := json.Unmarshal([]byte(`{"trial_id": 5, "generation": 2}`), &args); err != nil || args.TrialID != 5 || args.Generation != 2 || args.V != 0 {
		t.Fatalf("decoding pre-versioned args: %+v, %v", args, err)
	}
	raw, _ := json.Marshal(jobargs.ExpireTrial{V: jobargs.Version, TrialID: 5, Generation: 2})
	if string(raw) != `{"v":1,"trial_id":5,"generation":2}` {
		t.Fatalf("wire form changed: %s (jobs already in river_job would no longer match)", raw)
	}
}

// Two admins extending at once: both succeed in turn, the last date wins,
// and exactly one live Expire job (of the newest generation) is left.
func TestConcurrentExtensions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	dates := []time.Time{t0.Add(20 * day), t0.Add(30 * day)}
	var wg sync.WaitGroup
	errs := make([]error, len(dates))
	for i, d := range dates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.svc.UpdateTrial(ctx, b.admin, b.trialID, lifecycle.UpdateTrialRequest{ExpirationDate: &d}, "request:race")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	tr, err := b.svc.Trial(ctx, b.trialID)
	if err != nil {
		t.Fatal(err)
	}
	kinds, due := b.pendingJobs(t)
	if !slices.Equal(kinds, []string{jExpire, jRemind}) || !due[jExpire].Equal(tr.ExpirationDate) {
		t.Fatalf("jobs %v due %v, want one expire at the trial's date %v", kinds, due, tr.ExpirationDate)
	}
	if n := len(b.eventKinds(t)); n != 3 {
		t.Fatalf("%d events, want created and two extensions", n)
	}
}

// The reconciler sweeping while the trial's own Expire job runs neither
// doubles the transition nor leaves a stray job behind.
func TestReconcileBesideTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.clock.Advance(10 * day)

	var wg sync.WaitGroup
	wg.Add(2)
	var reconcileErr error
	go func() { defer wg.Done(); b.runDue(t) }()
	go func() { defer wg.Done(); _, reconcileErr = b.svc.Reconcile(ctx) }()
	wg.Wait()
	if reconcileErr != nil {
		t.Fatal(reconcileErr)
	}
	b.runDue(t)

	count := map[string]int{}
	for _, k := range b.eventKinds(t) {
		count[k]++
	}
	if count[expired] != 1 {
		t.Fatalf("%d expired events, want 1", count[expired])
	}
	if kinds, _ := b.pendingJobs(t); !slices.Equal(kinds, []string{jDelete}) {
		t.Fatalf("jobs %v, want exactly the Delete", kinds)
	}
}

// checkTransitionMetrics scrapes the workers' metrics after the longest path
// (remind, expire, delete, restore, delete, purge): one series per
// transition kind, with its lag.
func checkTransitionMetrics(t *testing.T, b *testBundle) {
	rec := httptest.NewRecorder()
	b.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`trialsd_transitions_total{kind="remind",outcome="applied"} 1`,
		`trialsd_transitions_total{kind="expire",outcome="applied"} 1`,
		`trialsd_transitions_total{kind="delete",outcome="applied"} 2`,
		`trialsd_transitions_total{kind="purge",outcome="applied"} 1`,
		`trialsd_transition_lag_seconds_count{kind="delete"} 2`,
		`trialsd_transition_lag_seconds_count{kind="purge"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("worker metrics lack %q", line)
		}
	}
}

// An expiration date exactly now is due now: the trial expires on the first
// run of due jobs, with no clock movement.
func TestExpirationExactlyNow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started, err := b.svc.StartTrial(context.Background(), b.admin,
		lifecycle.StartTrialRequest{ExpirationDate: ptr(b.clock.Now())}, "request:now")
	if err != nil {
		t.Fatal(err)
	}
	b.runDue(t)
	tr, err := b.svc.Trial(context.Background(), started.TrialID)
	if err != nil || tr.State != domain.StateExpired || !tr.ExpiredDate.Equal(b.clock.Now()) {
		t.Fatalf("trial %+v (%v), want expired now", tr, err)
	}
}
