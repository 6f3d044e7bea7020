package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/store"
)

// recorder is an Observer that keeps what it heard.
type recorder struct {
	mu   sync.Mutex
	seen []domain.Committed
}

func (r *recorder) TrialChanged(ev domain.Committed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, ev)
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.seen {
		out = append(out, ev.Event.Kind)
	}
	return out
}

func (r *recorder) last() domain.Committed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1]
}

// observed rebuilds b's service with an observer and returns it.
func (b *testBundle) observed(t *testing.T, queue lifecycle.JobQueue) *recorder {
	t.Helper()
	rec := &recorder{}
	b.svc = lifecycle.New(lifecycle.Deps{Pool: b.pool, Jobs: queue, Clock: b.clock, Config: b.cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: rec})
	return rec
}

// A change is reported once its transaction committed, with where the
// trial came from and how it converted; one that rolled back, never.
func TestObserverHearsOnlyCommittedChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rec := b.observed(t, b.river)
	uid, admin := b.user(t, "wilma"), b.user(t, "boss")

	own, err := b.svc.StartTrial(ctx, domain.Actor{UserID: uid}, lifecycle.StartTrialRequest{}, "request:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); got.Event.Kind != domain.EventCreated || got.Source != domain.SourceSelfService || got.Event.TrialID != own.TrialID {
		t.Fatalf("self-service start heard as %+v", got)
	}
	if _, err := b.svc.StartTrial(ctx, domain.Actor{UserID: admin, Admin: true}, lifecycle.StartTrialRequest{UserID: uid}, "request:2"); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); got.Source != domain.SourceAdmin {
		t.Fatalf("admin start heard with source %q", got.Source)
	}
	// A refused change (a second self-service trial) reports nothing.
	if _, err := b.svc.StartTrial(ctx, domain.Actor{UserID: uid}, lifecycle.StartTrialRequest{}, "request:3"); err == nil {
		t.Fatal("a second self-service trial was started")
	}
	if n := len(rec.kinds()); n != 2 {
		t.Fatalf("heard %v after a refused start, want 2 starts", rec.kinds())
	}

	b.clock.Advance(36 * time.Hour)
	if err := b.svc.Upgrade(ctx, domain.Actor{UserID: admin, Admin: true}, own.TrialID, "request:4"); err != nil {
		t.Fatal(err)
	}
	got := rec.last()
	if got.Event.Kind != domain.EventUpgraded || got.Path != domain.PathAdmin || got.From != domain.StateActive || got.Age != 36*time.Hour {
		t.Fatalf("upgrade heard as %+v", got)
	}
	if got.Event.Actor == "" || got.Event.Cause != "request:4" {
		t.Errorf("upgrade heard without its actor and cause: %+v", got.Event)
	}
}

// A start whose transaction rolled back after recording its event is not
// heard: reporting at record time would count a trial that never existed.
func TestObserverHearsNothingOfARolledBackChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := b.observed(t, failAfterInsert{b.river})
	uid := b.user(t, "gazoo")
	_, err := b.svc.StartTrial(context.Background(), domain.Actor{UserID: uid}, lifecycle.StartTrialRequest{}, "request:1")
	if !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	if kinds := rec.kinds(); len(kinds) != 0 {
		t.Fatalf("heard %v of a rolled-back start", kinds)
	}
}

// A change made in the caller's transaction is heard when the caller says
// it committed, and not when the caller rolled it back.
func TestObserverHearsCallerTransactionsOnCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rec := b.observed(t, b.river)
	for i, commit := range []bool{false, true} {
		var started lifecycle.StartedTrial
		err := store.InTx(ctx, b.pool, func(tx pgx.Tx) error {
			u, err := store.New(tx).InsertUser(ctx, store.InsertUserParams{
				Username: "signup" + string(rune('a'+i)), Email: string(rune('a'+i)) + "@acme.example", Now: t0,
			})
			if err != nil {
				return err
			}
			valid, err := lifecycle.ValidateStart(lifecycle.StartTrialRequest{})
			if err != nil {
				return err
			}
			if started, err = b.svc.StartTrialTx(ctx, tx, u.User, valid, "request:s"); err != nil {
				return err
			}
			if !commit {
				return errInjected
			}
			return nil
		})
		if commit != (err == nil) {
			t.Fatalf("commit %v: %v", commit, err)
		}
		if kinds := rec.kinds(); len(kinds) != 0 {
			t.Fatalf("heard %v before the caller reported", kinds)
		}
		if commit {
			started.Committed(ctx)
		}
	}
	if kinds := rec.kinds(); len(kinds) != 1 || rec.last().Source != domain.SourceEnterpriseSignup {
		t.Fatalf("heard %v (last %+v), want the committed sign-up's start", kinds, rec.last())
	}
}
