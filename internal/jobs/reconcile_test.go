package jobs

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertest"

	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/metrics"
)

// loseJobs deletes every live job of the trial, as a discarded job, a hand
// edit or a restore from an old backup would leave it.
func (b *testBundle) loseJobs(t *testing.T) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `
		DELETE FROM river_job WHERE state IN ('scheduled', 'available', 'retryable', 'pending')`); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileRepairsLostTransitions(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		// prepare moves the trial to the state under test.
		prepare  func(t *testing.T, b *testBundle)
		wantKind string
	}{
		{"active trial due soon without Expire", func(t *testing.T, b *testBundle) {
			b.clock.Advance(10*day - 30*time.Minute) // due within the 1h horizon
		}, jobargs.KindExpireTrial},
		{"overdue active trial without Expire", func(t *testing.T, b *testBundle) {
			b.clock.Advance(12 * day)
		}, jobargs.KindExpireTrial},
		{"expired trial without Delete", func(t *testing.T, b *testBundle) {
			b.clock.Advance(10 * day)
			b.runDue(t)
			b.clock.Advance(30 * day)
		}, jobargs.KindDeleteTrial},
		{"deleted trial without Purge", func(t *testing.T, b *testBundle) {
			if err := deleteNow(t, b); err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(30 * day)
		}, jobargs.KindPurgeOrganization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			tt.prepare(t, b)
			b.loseJobs(t)

			obs := metrics.New()
			worker := rivertest.NewWorker(t, b.client.Driver(), &river.Config{Test: river.TestConfig{Time: b.clock}},
				&ReconcileTrialsWorker{svc: b.svc, obs: obs})
			tx, err := b.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res, err := worker.Work(ctx, t, tx, jobargs.ReconcileTrials{V: jobargs.Version, Tick: b.clock.Now()}, nil)
			if err != nil || res.EventKind != river.EventKindJobCompleted {
				t.Fatalf("reconcile: %v %v", res, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			kinds, _ := b.pendingJobs(t)
			if len(kinds) != 1 || kinds[0] != tt.wantKind {
				t.Fatalf("jobs after reconcile %v, want [%s]", kinds, tt.wantKind)
			}
			if line := `trialsd_reconcile_repairs_total{kind="` + tt.wantKind + `"} 1`; !strings.Contains(scrape(t, obs), line+"\n") {
				t.Errorf("/metrics lacks %s", line)
			}

			// The repaired transition then happens, once.
			before, _ := b.svc.Trial(ctx, b.trialID)
			b.clock.Advance(time.Hour)
			b.runDue(t)
			after, err := b.svc.Trial(ctx, b.trialID)
			if err == nil && after.State == before.State {
				t.Fatalf("state still %s after the repaired job ran", after.State)
			}

			// A second sweep finds nothing left to repair.
			report, err := b.svc.Reconcile(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(report.Repaired) != 0 {
				t.Fatalf("second sweep repaired %v, want nothing", report.Repaired)
			}
		})
	}
}

// A trial due beyond the horizon is not read at all: the sweep stays cheap
// however many trials are far from their next transition.
func TestReconcileLooksOnlyWithinHorizon(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.loseJobs(t)
	report, err := b.svc.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if report.Checked != 0 || len(report.Repaired) != 0 {
		t.Fatalf("report %+v for a trial due in 10 days, want nothing checked", report)
	}
	// Healthy trials near their date are checked, not repaired.
	b2 := setup(t)
	b2.clock.Advance(10*day - time.Minute)
	report, err = b2.svc.Reconcile(context.Background())
	if err != nil || report.Checked != 1 || len(report.Repaired) != 0 {
		t.Fatalf("report %+v, %v; want 1 checked, none repaired", report, err)
	}
}

// Many due trials are swept in several bounded batches.
func TestReconcileBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const n = 1200 // more than two batches
	for i := range n {
		_, err := b.svc.StartTrial(ctx, b.admin, lifecycle.StartTrialRequest{
			ExpirationDate: ptr(t0.Add(time.Duration(i) * time.Second)),
		}, "request:bulk")
		if err != nil {
			t.Fatal(err)
		}
	}
	b.loseJobs(t)
	b.clock.Advance(time.Hour)
	report, err := b.svc.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if report.Checked != n || report.Repaired[jobargs.KindExpireTrial] != n {
		t.Fatalf("report checked %d, repaired %v; want %d each", report.Checked, report.Repaired, n)
	}
	var trials int
	if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM trials WHERE state = $1", domain.StateActive).Scan(&trials); err != nil || trials != n+1 {
		t.Fatalf("%d active trials (%v)", trials, err)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
