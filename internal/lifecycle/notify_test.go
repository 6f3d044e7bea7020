package lifecycle_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/emails"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
)

// withNotices is b's service with the e-mail settings cfg.
func (b *testBundle) withNotices(t *testing.T, cfg config.Email) *lifecycle.Service {
	t.Helper()
	notices, err := lifecycle.NewNotices(cfg, b.cfg.GracePeriod, emails.NewUnsubscribes("secret", cfg.PublicURL))
	if err != nil {
		t.Fatal(err)
	}
	return lifecycle.New(lifecycle.Deps{Pool: b.pool, Jobs: b.river, Clock: b.clock, Config: b.cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Webhooks: outbox.NewWriter(b.river, 3), Notices: notices})
}

// A notice switched off after it was scheduled writes no e-mail when its
// job runs, and still hands over to the next one.
func TestSwitchedOffNoticeWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	on := config.Default().Email
	started, err := b.withNotices(t, on).StartTrial(ctx, domain.Actor{UserID: b.user(t, "wilma")}, lifecycle.StartTrialRequest{}, "request:r")
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.river.JobList(ctx, river.NewJobListParams().Kinds(jobargs.KindNotifyTrial))
	if err != nil || len(res.Jobs) != 1 {
		t.Fatalf("notice jobs after the start: %v, %v; want the welcome's", res, err)
	}
	welcome := res.Jobs[0]
	off := on
	off.Notices.Welcome = false
	args := jobargs.NotifyTrial{V: jobargs.Version, TrialID: started.TrialID, Generation: 1, Template: emails.Welcome}
	if _, err := b.withNotices(t, off).Notify(ctx, welcome.ID, args, domain.JobCause(welcome.ID)); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, "outbox"); n != 0 {
		t.Errorf("%d outbox rows: the switched-off welcome was written", n)
	}
	tr, err := b.svc.Trial(ctx, started.TrialID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.ReminderJobIDs) != 2 { // the webhook reminder and the next notice (the 7-day reminder)
		t.Errorf("the trial records jobs %v after the welcome, want its reminder and the next notice", tr.ReminderJobIDs)
	}
}

// noticeJobs are the templates of the pending notice jobs.
func (b *testBundle) noticeJobs(t *testing.T) []string {
	t.Helper()
	res, err := b.river.JobList(context.Background(), river.NewJobListParams().Kinds(jobargs.KindNotifyTrial).
		States(rivertype.JobStateAvailable, rivertype.JobStateScheduled))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range res.Jobs {
		var a jobargs.NotifyTrial
		if err := json.Unmarshal(j.EncodedArgs, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a.Template)
	}
	return out
}

// A trial created already expired gets no welcome and no reminder, and
// its expiry schedules the e-mail that gives its deletion date.
func TestTrialCreatedExpiredGetsTheExpiryNoticeOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	svc := b.withNotices(t, config.Default().Email)
	past := t0.Add(-time.Hour)
	if _, err := svc.StartTrial(ctx, domain.Operator, lifecycle.StartTrialRequest{UserID: b.user(t, "wilma"), ExpirationDate: &past}, "request:r"); err != nil {
		t.Fatal(err)
	}
	if got := b.noticeJobs(t); len(got) != 0 {
		t.Errorf("notices of a trial created expired, before its expiry: %v, want none", got)
	}
	if _, err := svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.noticeJobs(t); !slices.Equal(got, []string{emails.Expired}) {
		t.Errorf("notices after its expiry: %v, want the expired one", got)
	}
}
