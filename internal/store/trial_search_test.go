package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// The console's search finds a trial by id, by its user's e-mail or
// username and by its organization's name, in any case; the list is in
// expiration order and its pages, by key, neither repeat nor skip a row
// among equal dates.
func TestSearchTrials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := store.New(pool)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []domain.Trial
	for i := range 7 {
		u, err := q.InsertUser(ctx, store.InsertUserParams{Username: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("User%d@Acme.example", i), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		org, err := q.InsertOrganization(ctx, store.NewOrganization{Name: fmt.Sprintf("Org %d", i), Trial: true, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		// Two trials share each date, so the id breaks the tie.
		tr, err := q.InsertTrial(ctx, store.InsertTrialParams{UserID: u.ID, OrganizationID: org.ID,
			ExpirationDate: now.Add(time.Duration(6-i/2) * time.Hour), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, tr)
	}
	ids := func(ls []domain.TrialListing) string {
		var s []string
		for _, l := range ls {
			s = append(s, fmt.Sprint(l.ID))
		}
		return strings.Join(s, ",")
	}
	search := func(s domain.TrialSearch) []domain.TrialListing {
		t.Helper()
		if s.Limit == 0 {
			s.Limit = 100
		}
		ls, err := q.SearchTrials(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	for query, want := range map[string]int64{
		"user3@acme.EXAMPLE": all[3].ID, "USER4": all[4].ID, "org 5": all[5].ID, fmt.Sprint(all[2].ID): all[2].ID,
	} {
		got := search(domain.TrialSearch{Query: query})
		if len(got) != 1 || got[0].ID != want {
			t.Errorf("search %q = %s, want %d", query, ids(got), want)
		}
	}
	if got := search(domain.TrialSearch{Query: "user"}); len(got) != 0 {
		t.Errorf("a part of a name matched %s", ids(got))
	}
	if got := search(domain.TrialSearch{Query: "user1@acme.example"})[0]; got.Username != "user1" || got.OrganizationName != "Org 1" || got.UserEmail != "User1@Acme.example" {
		t.Errorf("listing names: %+v", got)
	}
	if got := search(domain.TrialSearch{State: domain.StateExpired}); len(got) != 0 {
		t.Errorf("no trial is expired, got %s", ids(got))
	}

	// Pages of two, by key, give the whole list in order.
	whole := ids(search(domain.TrialSearch{}))
	var paged []domain.TrialListing
	var after *domain.TrialKey
	for {
		page := search(domain.TrialSearch{After: after, Limit: 2})
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		k := page[len(page)-1].Key()
		after = &k
	}
	if ids(paged) != whole || len(paged) != len(all) {
		t.Errorf("paged %s, whole %s", ids(paged), whole)
	}
	for i := 1; i < len(paged); i++ {
		a, b := paged[i-1], paged[i]
		if a.ExpirationDate.After(b.ExpirationDate) || (a.ExpirationDate.Equal(b.ExpirationDate) && a.ID > b.ID) {
			t.Errorf("out of order at %d: %s", i, whole)
		}
	}
}

// Every shape of the search reads trials, users and organizations through
// their indexes: with sequential scans priced out, a plan that still needs
// one would show it. This is what keeps the console fast at 10M trials.
func TestSearchTrialsUsesIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	key := &domain.TrialKey{ExpirationDate: time.Now(), ID: 1}
	for _, s := range []domain.TrialSearch{
		{Limit: 50}, {After: key, Limit: 50}, {State: domain.StateActive, After: key, Limit: 50},
		{Query: "fred@acme.example", Limit: 50}, {Query: "42", State: domain.StateUpgraded, After: key, Limit: 50},
	} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		plan := explain(t, tx, s)
		_ = tx.Rollback(ctx)
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("search %+v scans a table:\n%s", s, plan)
		}
	}
}

// explain is the plan of the search s, of store's own SQL: explainer
// writes the plan of each query before it runs it.
func explain(t *testing.T, tx pgx.Tx, s domain.TrialSearch) string {
	t.Helper()
	var plan strings.Builder
	q := store.New(explainer{tx: tx, out: &plan})
	if _, err := q.SearchTrials(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return plan.String()
}

// explainer is a store.DBTX that writes the plan of every query to out.
type explainer struct {
	tx  pgx.Tx
	out *strings.Builder
}

func (e explainer) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return e.tx.Exec(ctx, sql, args...)
}

func (e explainer) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return e.tx.QueryRow(ctx, sql, args...)
}

func (e explainer) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	lines, err := e.tx.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		return nil, err
	}
	plan, err := pgx.CollectRows(lines, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	e.out.WriteString(strings.Join(plan, "\n"))
	return e.tx.Query(ctx, sql, args...)
}

// The purged trials' list walks its partial index, not the whole history.
func TestPurgedTrialsUseTheirIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	key := &domain.TrialKey{ExpirationDate: time.Now(), ID: 1}
	id := int64(42)
	for _, narrow := range []*int64{nil, &id} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		if _, err := store.New(explainer{tx: tx, out: &plan}).PurgedTrials(ctx, narrow, key, 50); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback(ctx)
		if !strings.Contains(plan.String(), "trial_events_purged_idx") {
			t.Errorf("purged trials (id %v) do not use trial_events_purged_idx:\n%s", narrow, plan.String())
		}
	}
}
