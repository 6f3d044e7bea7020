package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("/metrics lacks %q", l)
		}
	}
}

// Every labelled counter exists at 0 for every known label value before
// anything happened, so the first event shows in rate() and increase(),
// and every job gauge reads 0 rather than vanishing.
func TestCountersStartAtZero(t *testing.T) {
	t.Parallel()
	out := scrape(t, metrics.New())
	wantLines(t, out,
		`trialsd_trials_started_total{source="self_service"} 0`,
		`trialsd_trials_started_total{source="enterprise_signup"} 0`,
		`trialsd_trials_started_total{source="admin"} 0`,
		`trialsd_trials_converted_total{from_state="active",path="payment"} 0`,
		`trialsd_trials_converted_total{from_state="expired",path="enterprise"} 0`,
		`trialsd_trial_changes_total{kind="purged"} 0`,
		`trialsd_trial_changes_total{kind="shortened"} 0`,
		`trialsd_trial_time_to_convert_seconds_count{path="admin"} 0`,
		`trialsd_reconcile_repairs_total{kind="trial.expire"} 0`,
		`trialsd_outbox_deliveries_total{channel="webhook",outcome="failed"} 0`,
		`trialsd_outbox_deliveries_total{channel="email",outcome="failed"} 0`,
		`trialsd_signups_total{kind="enterprise_trial",outcome="accepted"} 0`,
		`trialsd_transitions_total{kind="purge",outcome="failed"} 0`,
		`trialsd_jobs_worked_total{kind="outbox.deliver",outcome="failed"} 0`,
		`trialsd_jobs{queue="outbox",state="discarded"} 0`,
		`trialsd_job_oldest_available_age_seconds{queue="lifecycle"} 0`,
		`trialsd_workers_enabled 0`,
	)
}

// The lifecycle's committed events land in their counters.
func TestTrialChangedCounts(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.TrialChanged(domain.Committed{Event: domain.Event{Kind: domain.EventCreated}, Source: domain.SourceEnterpriseSignup})
	m.TrialChanged(domain.Committed{Event: domain.Event{Kind: domain.EventExpired}})
	m.TrialChanged(domain.Committed{Event: domain.Event{Kind: domain.EventUpgraded}, Path: domain.PathPayment,
		From: domain.StateExpired, Age: 3 * 24 * time.Hour})
	m.TrialChanged(domain.Committed{Event: domain.Event{Kind: domain.EventWillEnd}})
	wantLines(t, scrape(t, m),
		`trialsd_trials_started_total{source="enterprise_signup"} 1`,
		`trialsd_trial_changes_total{kind="expired"} 1`,
		`trialsd_trials_converted_total{from_state="expired",path="payment"} 1`,
		`trialsd_trial_time_to_convert_seconds_sum{path="payment"} 259200`,
		`trialsd_trial_time_to_convert_seconds_bucket{path="payment",le="259200"} 1`,
		`trialsd_trial_time_to_convert_seconds_bucket{path="payment",le="172800"} 0`,
	)
}

// The trial gauges are read when scraped, once per second however many
// scrapes come, and a failed read serves the last figures and counts.
func TestTrialGaugesReadWhenScraped(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	var reads atomic.Int64
	var fail atomic.Bool
	m.ReadTrialsFrom(func(context.Context) (metrics.TrialFigures, error) {
		reads.Add(1)
		if fail.Load() {
			return metrics.TrialFigures{}, errors.New("database away")
		}
		return metrics.TrialFigures{ByState: map[domain.State]int64{domain.StateActive: 3, "purged": 2}}, nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	out := scrape(t, m)
	wantLines(t, out, `trialsd_trials{state="active"} 3`, `trialsd_trials{state="purged"} 2`)
	scrape(t, m)
	if n := reads.Load(); n != 1 {
		t.Errorf("two scrapes within a second read the database %d times, want 1", n)
	}
	fail.Store(true)
	m.ForgetTrialFigures()
	scrape(t, m) // fails, and counts; the failure's count may be gathered first
	out = scrape(t, m)
	wantLines(t, out, `trialsd_trials{state="active"} 3`, `trialsd_trial_state_refresh_errors_total 1`)
	if n := reads.Load(); n != 2 {
		t.Errorf("a failed read was tried again %d times within a second", n-2)
	}
}

// The look-ahead gauges, counts that grow with the trials, are read by the
// refresher, never by a scrape; a failed refresh keeps the last values and
// counts.
func TestUpcomingGaugesRefreshed(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var reads atomic.Int64
	var fail atomic.Bool
	src := metrics.Sources{
		Queues: func(context.Context) (metrics.QueueStats, error) { return metrics.QueueStats{}, nil },
		Ready:  func(context.Context) error { return nil },
		Upcoming: func(context.Context) (metrics.Upcoming, error) {
			reads.Add(1)
			if fail.Load() {
				return metrics.Upcoming{}, errors.New("database away")
			}
			return metrics.Upcoming{EndingWithin: map[string]int64{"24h": 1, "7d": 2}, DeletionsDue: 4}, nil
		},
	}
	wantLines(t, scrape(t, m), `trialsd_trials_ending{within="24h"} 0`, `trialsd_trial_deletions_due{within="7d"} 0`)
	m.Refresh(context.Background(), src, logger)
	want := []string{
		`trialsd_trials_ending{within="24h"} 1`, `trialsd_trials_ending{within="7d"} 2`, `trialsd_trials_ending{within="30d"} 0`,
		`trialsd_trial_deletions_due{within="7d"} 4`,
	}
	wantLines(t, scrape(t, m), want...)
	scrape(t, m)
	if n := reads.Load(); n != 1 {
		t.Errorf("one refresh and three scrapes read the look-ahead counts %d times, want 1", n)
	}
	fail.Store(true)
	m.Refresh(context.Background(), src, logger)
	wantLines(t, scrape(t, m), append(want, `trialsd_trial_state_refresh_errors_total 1`)...)
}
