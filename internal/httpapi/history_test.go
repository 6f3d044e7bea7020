package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bigHistory gives trial 1 n more events of about 16 KiB of data each,
// numbered in their data ("n", shown first: jsonb orders keys by length),
// and a webhook delivery of each with a 16 KiB payload: what a member's
// extension requests leave over months.
func bigHistory(t *testing.T, b *testBundle, n int) {
	t.Helper()
	b.exec(t, `
		INSERT INTO trial_events (trial_id, kind, at, actor, cause, data)
		SELECT 1, 'trial.extension_requested', $1::timestamptz + i * interval '1 second', 'user:1', 'request:x',
			jsonb_build_object('n', i, 'request', jsonb_build_object('why', repeat('x', 16 << 10)))
		FROM generate_series(1, $2::int) AS i`, t0, n)
	b.exec(t, `
		INSERT INTO outbox (event_id, channel, destination, trial_id, payload, created_at)
		SELECT 'evt_' || id, 'webhook', 'https://hooks.example/in', 1,
			jsonb_build_object('body', repeat('y', 16 << 10)), $1
		FROM trial_events WHERE trial_id = 1`, t0)
}

// A trial with 2,000 events of 16 KiB: a page of the events API and of the
// console's trial page stays small, and following their cursors reaches
// every event once, in order.
func TestTrialHistoryIsPaged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	const n = 2000
	bigHistory(t, b, n)

	t.Run("events API", func(t *testing.T) {
		req, _ := http.NewRequest("GET", b.server.URL+"/v1/api/admin/trials/1/events", nil)
		req.Header.Set("x-api-key", b.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		size, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || size > 1<<20 {
			t.Fatalf("first page: %d, %d bytes, want 200 and at most 1 MiB", resp.StatusCode, size)
		}
		var ids []int64
		path := "/v1/api/admin/trials/1/events?limit=200"
		for pages := 0; path != ""; pages++ {
			if pages > n/200+1 {
				t.Fatalf("more than %d pages", pages)
			}
			r := b.call(t, "GET", path, b.admin, "")
			events, _ := r.body["events"].([]any)
			if r.status != http.StatusOK || len(events) == 0 || len(events) > 200 {
				t.Fatalf("GET %s: %d, %d events", path, r.status, len(events))
			}
			for _, e := range events {
				ids = append(ids, int64(e.(map[string]any)["id"].(float64)))
			}
			path = ""
			if next, ok := r.body["next"].(float64); ok {
				path = fmt.Sprintf("/v1/api/admin/trials/1/events?limit=200&after=%d", int64(next))
			}
		}
		if len(ids) != n+1 {
			t.Fatalf("%d events over the pages, want %d", len(ids), n+1)
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("event %d after %d: want each once, oldest first", ids[i], ids[i-1])
			}
		}
		for _, q := range []string{"limit=0", "limit=201", "limit=x", "after=0", "after=-1"} {
			if r := b.call(t, "GET", "/v1/api/admin/trials/1/events?"+q, b.admin, ""); r.status != http.StatusBadRequest {
				t.Errorf("?%s: %d, want 400", q, r.status)
			}
		}
		if r := b.call(t, "GET", "/v1/api/admin/trials/99/events", b.admin, ""); r.status != http.StatusNotFound {
			t.Errorf("events of an unknown trial: %d, want 404", r.status)
		}
	})

	t.Run("console", func(t *testing.T) {
		br := consoleLogin(t, b)
		number := regexp.MustCompile(`\{&#34;n&#34;: (\d+)`)
		older := regexp.MustCompile(`href="(/console/trials/1\?before=\d+)">Older events`)
		seen := map[int]int{}
		var order []int
		path := "/console/trials/1"
		for pages := 0; path != ""; pages++ {
			if pages > n/50+1 {
				t.Fatalf("more than %d pages", pages)
			}
			resp, body := br.get(path)
			if resp.StatusCode != http.StatusOK || len(body) > 300<<10 {
				t.Fatalf("GET %s: %d, %d bytes, want 200 and at most 300 KiB", path, resp.StatusCode, len(body))
			}
			if strings.Contains(body, strings.Repeat("y", 100)) {
				t.Fatalf("GET %s shows a delivery's payload", path)
			}
			for _, m := range number.FindAllStringSubmatch(body, -1) {
				i, _ := strconv.Atoi(m[1])
				seen[i]++
				order = append(order, i)
			}
			path = ""
			if m := older.FindStringSubmatch(body); m != nil {
				path = m[1]
			}
		}
		if len(seen) != n || len(order) != n {
			t.Fatalf("%d events seen, %d distinct, want each of %d once", len(order), len(seen), n)
		}
		for i := 1; i < len(order); i++ {
			if order[i] != order[i-1]-1 {
				t.Fatalf("event %d after %d: want newest first", order[i], order[i-1])
			}
		}
	})
}

// A trial keeps at most 10 extension requests in 24 hours, whoever asks and
// however slowly: the 11th is a 409 naming the trial; a day after the
// first, one more is taken.
func TestExtensionRequestsPerTrialPerDay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred := b.addUser(t, "fred")
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	path := "/v1/api/organizations/1/trial/request-extension"
	for i := range 10 {
		if r := b.call(t, "POST", path, fred.key, `{"why":"more time"}`); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %v", i+1, r.status, r.body)
		}
		b.clock.Advance(2 * time.Hour) // well under the rate limits
	}
	r := b.call(t, "POST", path, fred.key, `{"why":"more time"}`)
	if msg, _ := r.body["error"].(string); r.status != http.StatusConflict ||
		msg != "Trial 1 already has 10 extension requests in the last 24 hours; retry later" {
		t.Fatalf("the 11th request in 24 hours: %d %q, want 409", r.status, msg)
	}
	if r := b.call(t, "POST", path, b.admin, `{}`); r.status != http.StatusConflict {
		t.Fatalf("an admin's, the same day: %d, want 409", r.status)
	}
	b.clock.Advance(5 * time.Hour) // the first is now over 24 hours old
	if r := b.call(t, "POST", path, fred.key, `{"why":"more time"}`); r.status != http.StatusOK {
		t.Fatalf("a day after the first: %d %v", r.status, r.body)
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM trial_events WHERE kind = 'trial.extension_requested'`); n != "11" {
		t.Fatalf("%s extension events, want 11", n)
	}
}
