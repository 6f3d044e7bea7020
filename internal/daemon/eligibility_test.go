package daemon_test

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// A purge leaves the trial's tombstone in the eligibility history, so the
// address cannot start another trial once its organization and trial are
// gone. On a test clock the purge really happens, by the real jobs; the
// rehearsal's trials count only against the clock's other trials, and go
// with the clock.
func TestTombstoneOutlivesThePurge(t *testing.T) {
	t.Parallel()
	b := setupClocks(t, withEligibilityRules, withoutNotices)
	b.start(t)
	ctx := context.Background()
	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"tombstone","frozenTime":"2031-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	clock := int64(body["testClock"].(map[string]any)["id"].(float64))
	trialFor := func(email string) int {
		t.Helper()
		var id int64
		err := b.pool.QueryRow(ctx, `INSERT INTO users (username, email, name, created_at, updated_at)
			VALUES (md5($1), $1, 'Someone', now(), now()) RETURNING id`, email).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+jsonInt(id)+`,"testClockId":`+jsonInt(clock)+`}`)
		if status != http.StatusOK && status != http.StatusConflict {
			t.Fatalf("trial of %s: %d %v", email, status, body)
		}
		return status
	}
	if s := trialFor("wilma@quarry.example"); s != http.StatusOK {
		t.Fatalf("wilma's first trial: %d", s)
	}
	if s := trialFor("Wilma+2@quarry.example"); s != http.StatusConflict {
		t.Fatalf("wilma's second trial on the clock: %d, want 409", s)
	}
	// The rehearsal did not use up wilma's real trial.
	if status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+jsonInt(b.userID(t, "wilma@quarry.example"))+`}`); status != http.StatusOK {
		t.Fatalf("wilma's real trial: %d %v", status, body)
	}

	b.advance(t, clock, "2031-04-01T00:00:00.000Z") // expired 01-15, deleted 02-14, purged 03-16
	var trials int
	var outcome string
	var purged time.Time
	err := b.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM trials WHERE test_clock_id = $1), outcome, purged_at
		FROM eligibility_history WHERE test_clock_id = $1`, clock).Scan(&trials, &outcome, &purged)
	if err != nil || trials != 0 || outcome != "deleted" || !purged.Equal(time.Date(2031, 3, 16, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the purge: %d trials on the clock, tombstone %q purged %v (%v); want none, and deleted at 2031-03-16", trials, outcome, purged, err)
	}
	if s := trialFor("wilma+3@quarry.example"); s != http.StatusConflict {
		t.Errorf("wilma's trial after the purge: %d, want 409 from the tombstone", s)
	}
	if s := trialFor("barney@quarry.example"); s != http.StatusOK {
		t.Errorf("barney's trial after the purge: %d, want 200: the company has no active trial", s)
	}

	if status, body := b.do(t, "DELETE", "/v1/api/admin/test-clocks/"+jsonInt(clock), b.admin, ""); status != http.StatusOK {
		t.Fatalf("delete clock: %d %v", status, body)
	}
	eventually(t, "the clock's history gone with it", func() bool {
		var n int
		return b.pool.QueryRow(ctx, `SELECT count(*) FROM eligibility_history WHERE test_clock_id IS NOT NULL`).Scan(&n) == nil && n == 0
	})
}

// userID is the id of the user with email.
func (b *testBundle) userID(t *testing.T, email string) int64 {
	t.Helper()
	var id int64
	if err := b.pool.QueryRow(context.Background(), `SELECT id FROM users WHERE email = $1`, email).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
