package eligibility_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/eligibility"
)

// The pre-flight answers as a start would: an unused grant that lifts the
// refusal makes the address eligible (a domain's for anyone, an address's
// for an admin only, since an anonymous answer must not depend on the
// address), and it stays unused.
func TestPreflightCountsUnusedGrants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules, _, exec := newRules(t)
	// The company has had its three trials this year.
	exec(`INSERT INTO eligibility_history (trial_id, address_hash, domain, started_at) VALUES
		(1, 'a', 'slate.example', $1), (2, 'b', 'slate.example', $1), (3, 'c', 'slate.example', $1)`, t0.Add(-time.Hour))
	fred := eligibility.Subject{Email: "fred@slate.example"}
	check := func(full bool) eligibility.Report {
		t.Helper()
		r, err := rules.Check(ctx, fred, full)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := check(false); r.Eligible {
		t.Fatalf("anonymous before any grant: %+v; want refused", r)
	}
	admin := domain.Actor{UserID: 1, Admin: true}
	grant := func(sub eligibility.Subject) eligibility.Grant {
		t.Helper()
		g, err := rules.Grant(ctx, admin, eligibility.GrantRequest{Subject: sub, Note: "renewal talks"})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	ga := grant(fred)
	if r := check(false); r.Eligible || r.Message != eligibility.GenericRefusal {
		t.Errorf("anonymous with the address's grant: %+v; want the generic refusal", r)
	}
	if r := check(true); !r.Eligible || r.Reason != "domain_limit" || r.Grant == nil || r.Grant.ID != ga.ID {
		t.Errorf("admin with the address's grant: %+v; want eligible through grant %d lifting domain_limit", r, ga.ID)
	}
	gd := grant(eligibility.Subject{Domain: "slate.example"})
	if r := check(false); !r.Eligible || r.Reason != "" || r.Message != "" {
		t.Errorf("anonymous with the domain's grant: %+v; want eligible", r)
	}
	if r := check(true); r.Grant == nil || r.Grant.ID != ga.ID {
		t.Errorf("admin with both grants: %+v; want the address's, %d, first, as a start claims it", r, ga.ID)
	}
	r, err := rules.Show(ctx, eligibility.Subject{Domain: "slate.example"})
	if err != nil || len(r.Grants) != 2 || r.Grants[0].UsedAt != nil || r.Grants[1].UsedAt != nil {
		t.Fatalf("grants after the pre-flights: %+v, %v; want %d and %d unused", r.Grants, err, ga.ID, gd.ID)
	}
}

// With every rule off, the pre-flight finds everyone eligible, as Admit
// admits everyone, even at a domain an admin gave limits of its own.
func TestPreflightWithTheRulesOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules, _, exec, _ := newRulesOf(t, eligibility.Deps{Config: config.Eligibility{HistoryRetention: time.Hour, DomainWindow: time.Hour}})
	exec(`INSERT INTO eligibility_domains (domain, active_limit, trials_limit, note, set_by, set_at) VALUES ('slate.example', 1, 1, 'n', 'admin', $1)`, t0)
	exec(`INSERT INTO eligibility_history (trial_id, address_hash, domain, started_at) VALUES (1, 'a', 'slate.example', $1)`, t0)
	for _, full := range []bool{false, true} {
		r, err := rules.Check(ctx, eligibility.Subject{Email: "fred@slate.example"}, full)
		if err != nil || !r.Eligible || r.Reason != "" || r.Limits.Source != "off" {
			t.Errorf("Check (admin %v) with the rules off: %+v, %v; want eligible, limits off", full, r, err)
		}
	}
}

// A daemon built without the rules (a nil Service) admits and finds
// everyone eligible, and refuses an admin's change to rules it has not.
func TestNilServiceHasNoRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rules *eligibility.Service
	r, err := rules.Show(ctx, eligibility.Subject{Email: "fred@slate.example"})
	if err != nil || !r.Eligible || r.Domain != "slate.example" {
		t.Errorf("Show = %+v, %v; want eligible", r, err)
	}
	if _, err := rules.Grant(ctx, domain.Operator, eligibility.GrantRequest{Subject: eligibility.Subject{Domain: "slate.example"}, Note: "n"}); apperr.CodeOf(err) != apperr.Unavailable {
		t.Errorf("Grant = %v; want unavailable", err)
	}
	if err := rules.SetDomainLimits(ctx, domain.Operator, eligibility.DomainLimitsRequest{Domain: "slate.example", Note: "n"}); apperr.CodeOf(err) != apperr.Unavailable {
		t.Errorf("SetDomainLimits = %v; want unavailable", err)
	}
	if n, err := rules.Prune(ctx); n != 0 || err != nil {
		t.Errorf("Prune = %d, %v", n, err)
	}
	if n, err := rules.Backfill(ctx); n != 0 || err != nil {
		t.Errorf("Backfill = %d, %v", n, err)
	}
	if _, err := rules.Admit(ctx, nil, eligibility.Start{Email: "fred@slate.example", Now: t0}); err != nil {
		t.Errorf("Admit = %v", err)
	}
}

// A start waits for the starts its rules count: those of its company
// domain. At a free-mail domain, which has no domain limits, only its own
// address's, so two people's starts there do not queue behind each other.
func TestStartsLockOnlyWhatTheyCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules, _, _, pool := newRulesOf(t, eligibility.Deps{Config: config.Default().Eligibility, FreeEmailDomains: []string{"gmail.com"}})
	begin := func() pgx.Tx {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(ctx) }) //nolint:errcheck // ends the transaction
		// A start that has to wait fails at once instead: the holder
		// below keeps its lock until the test ends, so a wait is never a
		// matter of speed.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '50ms'`); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	admit := func(tx pgx.Tx, email string) error {
		_, err := rules.Admit(ctx, tx, eligibility.Start{Email: email, Now: t0})
		return err
	}
	for _, held := range []string{"fred@gmail.com", "fred@slate.example"} {
		if err := admit(begin(), held); err != nil {
			t.Fatalf("admitting %s: %v", held, err)
		}
	}
	if err := admit(begin(), "wilma@gmail.com"); err != nil {
		t.Errorf("wilma@gmail.com beside fred@gmail.com: %v; want no wait", err)
	}
	for _, waits := range []string{"f.r.e.d@gmail.com", "barney@slate.example"} {
		var pgErr *pgconn.PgError
		if err := admit(begin(), waits); !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			t.Errorf("%s: %v; want it to wait for the start it counts (lock_timeout)", waits, err)
		}
	}
}
