package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
	"github.com/trialsd/trialsd/internal/wire"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type testBundle struct {
	pool  *pgxpool.Pool
	clock *clock.Stub
	svc   *lifecycle.Service
	river *river.Client[pgx.Tx]
	cfg   config.Lifecycle
}

// setup returns a lifecycle service on its own database, with an insert-only
// River client: jobs are enqueued for real and can be inspected, never run.
func setup(t *testing.T, wrap ...func(lifecycle.JobQueue) lifecycle.JobQueue) *testBundle {
	t.Helper()
	pool := testdb.New(t)
	stub := clock.NewStub(t0)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Test: river.TestConfig{Time: stub}})
	if err != nil {
		t.Fatal(err)
	}
	var inserter lifecycle.JobQueue = client
	for _, w := range wrap {
		inserter = w(inserter)
	}
	cfg := config.Default().Lifecycle
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &testBundle{pool: pool, clock: stub, svc: lifecycle.New(lifecycle.Deps{Pool: pool, Jobs: inserter, Clock: stub, Config: cfg, Logger: logger}), river: client, cfg: cfg}
}

// newService rebuilds the service after a test changed b.cfg.
func (b *testBundle) newService(t *testing.T) *lifecycle.Service {
	t.Helper()
	return lifecycle.New(lifecycle.Deps{Pool: b.pool, Jobs: b.river, Clock: b.clock, Config: b.cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func (b *testBundle) user(t *testing.T, username string) int64 {
	t.Helper()
	u, err := store.New(b.pool).InsertUser(context.Background(), store.InsertUserParams{
		Username: username, Email: username + "@acme.example", Name: "Name of " + username, Now: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func (b *testBundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *testBundle) expireJobs(t *testing.T) []*rivertype.JobRow {
	t.Helper()
	res, err := b.river.JobList(context.Background(), river.NewJobListParams().Kinds(jobargs.ExpireTrial{}.Kind()).
		States(rivertype.JobStateAvailable, rivertype.JobStateScheduled).First(100))
	if err != nil {
		t.Fatal(err)
	}
	return res.Jobs
}

func ptr[T any](v T) *T { return &v }

func TestStartTrial(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		admin     bool
		req       lifecycle.StartTrialRequest
		wantExp   time.Time
		wantNotes *string
		wantCode  apperr.Code
		wantField string
	}{
		{
			name:    "user gets the default length",
			req:     lifecycle.StartTrialRequest{},
			wantExp: t0.Add(336 * time.Hour),
		},
		{
			name:    "user's date and notes are ignored",
			req:     lifecycle.StartTrialRequest{ExpirationDate: ptr(t0.Add(time.Hour)), Notes: ptr("vip")},
			wantExp: t0.Add(336 * time.Hour),
		},
		{
			name:      "admin's date and notes are honoured, truncated to ms",
			admin:     true,
			req:       lifecycle.StartTrialRequest{ExpirationDate: ptr(t0.Add(48*time.Hour + 1500*time.Microsecond)), Notes: ptr("vip")},
			wantExp:   t0.Add(48*time.Hour + time.Millisecond),
			wantNotes: ptr("vip"),
		},
		{
			name:    "admin may set a date in the past",
			admin:   true,
			req:     lifecycle.StartTrialRequest{ExpirationDate: ptr(t0.Add(-time.Hour))},
			wantExp: t0.Add(-time.Hour),
		},
		{
			name:      "more than 10 years ahead is refused",
			admin:     true,
			req:       lifecycle.StartTrialRequest{ExpirationDate: ptr(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))},
			wantCode:  apperr.Invalid,
			wantField: "expirationDate",
		},
		{
			name:      "unknown ML answer is refused",
			req:       lifecycle.StartTrialRequest{Details: domain.TrialDetails{UserHasMLModelsInProduction: ptr("maybe")}},
			wantCode:  apperr.Invalid,
			wantField: "userHasMLModelsInProduction",
		},
		{
			name:      "bad e-mail is refused",
			req:       lifecycle.StartTrialRequest{Email: ptr("not an address")},
			wantCode:  apperr.Invalid,
			wantField: "email",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			uid := b.user(t, "fred")

			started, err := b.svc.StartTrial(ctx, domain.Actor{UserID: uid, Admin: tt.admin}, tt.req, "request:r1")
			if tt.wantCode != "" {
				var e *apperr.Error
				if !errors.As(err, &e) || e.Code != tt.wantCode || e.Field != tt.wantField {
					t.Fatalf("err = %v, want %s on %s", err, tt.wantCode, tt.wantField)
				}
				for _, table := range []string{"organizations", "trials", "trial_events", "river_job"} {
					if n := b.count(t, table); n != 0 {
						t.Errorf("%d rows in %s after a refused request", n, table)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tr, err := b.svc.Trial(ctx, started.TrialID)
			if err != nil {
				t.Fatal(err)
			}
			if !tr.ExpirationDate.Equal(tt.wantExp) {
				t.Errorf("expiration = %v, want %v", tr.ExpirationDate, tt.wantExp)
			}
			if (tr.Notes == nil) != (tt.wantNotes == nil) || (tr.Notes != nil && *tr.Notes != *tt.wantNotes) {
				t.Errorf("notes = %v, want %v", tr.Notes, tt.wantNotes)
			}
			if tr.State != domain.StateActive || tr.ExpiredDate != nil || !tr.CreatedAt.Equal(t0) {
				t.Errorf("trial = %+v, want active, created at t0", tr)
			}
			jobs := b.expireJobs(t)
			if wantAt := tt.wantExp.Add(lifecycle.ExpiryJobDelay(b.cfg)); len(jobs) != 1 || !jobs[0].ScheduledAt.Equal(wantAt) {
				t.Fatalf("expire jobs = %v, want one scheduled at %v", jobs, wantAt)
			}
			events, err := b.svc.Events(ctx, started.TrialID)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 1 || events[0].Kind != domain.EventCreated || events[0].Cause != "request:r1" {
				t.Fatalf("events = %+v, want one trial.created caused by the request", events)
			}
		})
	}
}

func TestStartTrialCreatesOrganizationWithUserAsAdmin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	uid := b.user(t, "wilma")

	started, err := b.svc.StartTrial(ctx, domain.Actor{UserID: uid}, lifecycle.StartTrialRequest{
		Email: ptr("wilma@bedrock.example"), Name: ptr("Wilma F"), OrganizationName: ptr("Bedrock Inc"),
	}, "request:r")
	if err != nil {
		t.Fatal(err)
	}
	var name, role, email, userName string
	var isTrial, enterprise bool
	err = b.pool.QueryRow(ctx, `
		SELECT o.name, o.is_trial, o.enterprise_features, m.role, u.email, u.name
		FROM organizations o JOIN organization_members m ON m.organization_id = o.id JOIN users u ON u.id = m.user_id
		WHERE o.id = $1`, started.OrganizationID).Scan(&name, &isTrial, &enterprise, &role, &email, &userName)
	if err != nil {
		t.Fatal(err)
	}
	if name != "Bedrock Inc" || !isTrial || !enterprise || role != store.RoleAdmin {
		t.Errorf("organization %q trial=%v enterprise=%v role=%q", name, isTrial, enterprise, role)
	}
	if email != "wilma@bedrock.example" || userName != "Wilma F" {
		t.Errorf("user contact = %q %q, want the request's", email, userName)
	}
}

func TestStartTrialOneSelfServicePerUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	uid := b.user(t, "barney")

	if _, err := b.svc.StartTrial(ctx, domain.Actor{UserID: uid}, lifecycle.StartTrialRequest{}, "request:1"); err != nil {
		t.Fatal(err)
	}
	jobsBefore := b.count(t, "river_job")
	_, err := b.svc.StartTrial(ctx, domain.Actor{UserID: uid}, lifecycle.StartTrialRequest{}, "request:2")
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("second self-service trial: err = %v, want conflict", err)
	}
	if n := b.count(t, "organizations"); n != 1 {
		t.Fatalf("%d organizations after a refused second trial, want 1", n)
	}
	if n := b.count(t, "river_job"); n != jobsBefore {
		t.Fatalf("%d jobs after a refused second trial, want %d as before it", n, jobsBefore)
	}
	// Admins are not limited.
	admin := b.user(t, "betty")
	for i := range 2 {
		if _, err := b.svc.StartTrial(ctx, domain.Actor{UserID: admin, Admin: true}, lifecycle.StartTrialRequest{}, "request:a"); err != nil {
			t.Fatalf("admin trial %d: %v", i, err)
		}
	}
}

func TestStartTrialEmailTakenIsConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	uid := b.user(t, "dino")
	b.user(t, "pebbles")

	_, err := b.svc.StartTrial(context.Background(), domain.Actor{UserID: uid},
		lifecycle.StartTrialRequest{Email: ptr("PEBBLES@acme.example")}, "request:1")
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("err = %v, want conflict for an e-mail of another user", err)
	}
	if n := b.count(t, "trials"); n != 0 {
		t.Fatalf("%d trials written by a refused request", n)
	}
}

// failAfterInsert enqueues the job for real, through the caller's
// transaction, then fails: the transaction must roll the job back with the
// trial. Had StartTrial enqueued outside its transaction, the job would stay.
type failAfterInsert struct{ lifecycle.JobQueue }

var errInjected = errors.New("injected failure after enqueue")

func (f failAfterInsert) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	if _, err := f.JobQueue.InsertTx(ctx, tx, args, opts); err != nil {
		return nil, err
	}
	return nil, errInjected
}

func TestStartTrialRolledBackLeavesNoJob(t *testing.T) {
	t.Parallel()
	b := setup(t, func(i lifecycle.JobQueue) lifecycle.JobQueue { return failAfterInsert{i} })
	uid := b.user(t, "gazoo")

	_, err := b.svc.StartTrial(context.Background(), domain.Actor{UserID: uid}, lifecycle.StartTrialRequest{}, "request:1")
	if !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	for _, table := range []string{"river_job", "trials", "trial_events", "organizations", "organization_members"} {
		if n := b.count(t, table); n != 0 {
			t.Errorf("%d rows left in %s by a rolled-back create", n, table)
		}
	}
}

func startTrial(t *testing.T, b *testBundle, expires time.Time) domain.Trial {
	t.Helper()
	admin := b.user(t, "admin")
	started, err := b.svc.StartTrial(context.Background(), domain.Actor{UserID: admin, Admin: true},
		lifecycle.StartTrialRequest{ExpirationDate: &expires}, "request:setup")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := b.svc.Trial(context.Background(), started.TrialID)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (b *testBundle) events(t *testing.T, trialID int64, kind string) []domain.Event {
	t.Helper()
	all, err := b.svc.Events(context.Background(), trialID)
	if err != nil {
		t.Fatal(err)
	}
	var out []domain.Event
	for _, e := range all {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("applies once when due", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		tr := startTrial(t, b, t0.Add(time.Hour))
		now := b.clock.Advance(time.Hour + 250*time.Millisecond)

		res, err := b.svc.Expire(ctx, tr.ID, tr.ScheduleGen, "job:7")
		if err != nil || res.Outcome != lifecycle.Applied {
			t.Fatalf("Expire = %+v, %v; want applied", res, err)
		}
		if !res.Due.Equal(tr.ExpirationDate) || !res.At.Equal(now) {
			t.Errorf("result = %+v, want due %v at %v", res, tr.ExpirationDate, now)
		}
		got, _ := b.svc.Trial(ctx, tr.ID)
		if got.State != domain.StateExpired || got.ExpiredDate == nil || !got.ExpiredDate.Equal(now) {
			t.Errorf("trial = %+v, want expired at %v", got, now)
		}
		var enterprise bool
		if err := b.pool.QueryRow(ctx, "SELECT enterprise_features FROM organizations WHERE id = $1", tr.OrganizationID).Scan(&enterprise); err != nil || enterprise {
			t.Errorf("organization keeps enterprise features after expiry (%v)", err)
		}
		ev := b.events(t, tr.ID, domain.EventExpired)
		if len(ev) != 1 || ev[0].Actor != domain.System.String() || ev[0].Cause != "job:7" {
			t.Fatalf("expired events = %+v, want one by system caused by job:7", ev)
		}

		res, err = b.svc.Expire(ctx, tr.ID, tr.ScheduleGen, "job:8")
		if err != nil || res.Outcome != lifecycle.AlreadyApplied {
			t.Fatalf("second Expire = %+v, %v; want already applied", res, err)
		}
		if n := len(b.events(t, tr.ID, domain.EventExpired)); n != 1 {
			t.Fatalf("%d expired events after a duplicate job, want 1", n)
		}
	})

	t.Run("not due yet", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		tr := startTrial(t, b, t0.Add(time.Hour))
		_, err := b.svc.Expire(ctx, tr.ID, tr.ScheduleGen, "job:1")
		var notDue *lifecycle.NotDueError
		if !errors.As(err, &notDue) || !notDue.Due.Equal(tr.ExpirationDate) {
			t.Fatalf("err = %v, want NotDueError at %v", err, tr.ExpirationDate)
		}
		if got, _ := b.svc.Trial(ctx, tr.ID); got.State != domain.StateActive {
			t.Fatalf("state = %s after an early job, want active", got.State)
		}
	})

	t.Run("stale generation is skipped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		tr := startTrial(t, b, t0)
		res, err := b.svc.Expire(ctx, tr.ID, tr.ScheduleGen-1, "job:1")
		if err != nil || res.Outcome != lifecycle.Skipped {
			t.Fatalf("Expire = %+v, %v; want skipped", res, err)
		}
	})

	t.Run("unknown trial is skipped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res, err := b.svc.Expire(ctx, 4242, 1, "job:1")
		if err != nil || res.Outcome != lifecycle.Skipped {
			t.Fatalf("Expire = %+v, %v; want skipped", res, err)
		}
	})

	t.Run("concurrent jobs apply once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		tr := startTrial(t, b, t0)
		const n = 8
		var wg sync.WaitGroup
		outcomes := make([]lifecycle.Outcome, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := b.svc.Expire(ctx, tr.ID, tr.ScheduleGen, domain.JobCause(int64(i)))
				outcomes[i], errs[i] = res.Outcome, err
			}()
		}
		wg.Wait()
		applied := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("job %d: %v", i, errs[i])
			}
			if outcomes[i] == lifecycle.Applied {
				applied++
			}
		}
		if applied != 1 {
			t.Fatalf("%d jobs applied the transition, want exactly 1", applied)
		}
		if ev := b.events(t, tr.ID, domain.EventExpired); len(ev) != 1 {
			t.Fatalf("%d expired events, want 1", len(ev))
		}
	})
}

func TestTrialNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.svc.Trial(context.Background(), 99); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("err = %v, want not found", err)
	}
	if _, err := b.svc.Events(context.Background(), 99); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("events err = %v, want not found", err)
	}
}

// A purged trial is not "not found": its answer says it was purged, and
// when, since its history is still served.
func TestPurgedTrialSaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tr := startTrial(t, b, t0.Add(time.Hour))
	if err := b.svc.DeleteTrialNow(ctx, domain.Operator, tr.ID, "test"); err != nil {
		t.Fatal(err)
	}
	var purgeAt time.Time
	if err := b.pool.QueryRow(ctx, "SELECT purge_at FROM organizations WHERE id = $1", tr.OrganizationID).Scan(&purgeAt); err != nil {
		t.Fatal(err)
	}
	b.clock.Set(purgeAt)
	if res, err := b.svc.Purge(ctx, tr.OrganizationID, purgeAt, "test"); err != nil || res.Outcome != lifecycle.Applied {
		t.Fatalf("Purge = %+v, %v", res, err)
	}
	want := fmt.Sprintf("Trial %d was purged at %s, with its organization; only its history remains", tr.ID, wire.Format(purgeAt))
	_, err := b.svc.Trial(ctx, tr.ID)
	if apperr.CodeOf(err) != apperr.NotFound || err.Error() != want {
		t.Errorf("Trial of a purged trial: %v, want not found: %q", err, want)
	}
	err = b.svc.UpdateTrial(ctx, domain.Operator, tr.ID, lifecycle.UpdateTrialRequest{Notes: new(string)}, "test")
	if apperr.CodeOf(err) != apperr.NotFound || err.Error() != want {
		t.Errorf("UpdateTrial of a purged trial: %v, want not found: %q", err, want)
	}
	if events, err := b.svc.Events(ctx, tr.ID); err != nil || events[len(events)-1].Kind != domain.EventPurged {
		t.Errorf("history of a purged trial: %v, %v", events, err)
	}
}
