package daemon_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
)

// River's UI takes an admin's jwt cookie, so it keeps the console's origin
// rule: a cancel posted from a sibling site (Sec-Fetch-Site: same-site, a
// foreign Origin) is refused and the job stays; River's own same-origin
// fetch (text/plain, as its frontend sends it) still works. Its pages and
// API answers carry the console's headers, with a policy of their own.
func TestRiverUIRefusesCrossOriginAndSetsHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) { c.Console.Enabled, c.HTTP.RiverUI = true, true })
	ctx := context.Background()
	if status, body := b.do(t, "POST", "/v1/api/user/trial", b.admin,
		`{"expirationDate":"`+t0.Add(30*24*time.Hour).Format(time.RFC3339)+`","organizationName":"ACME"}`); status != http.StatusOK {
		t.Fatalf("create: %d %v", status, body)
	}
	var jobID string
	if err := b.pool.QueryRow(ctx, `SELECT id::text FROM river_job WHERE state = 'scheduled' ORDER BY id LIMIT 1`).Scan(&jobID); err != nil {
		t.Fatal(err)
	}
	var version int32
	if err := b.pool.QueryRow(ctx, `SELECT token_version FROM users WHERE id = 1`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	token, err := b.daemon.Services().Tokens.Issue(domain.User{ID: 1}, version)
	if err != nil {
		t.Fatal(err)
	}
	cancel := func(header ...string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", b.server.URL+"/riverui/api/jobs/cancel", strings.NewReader(`{"ids":["`+jobID+`"]}`))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		req.AddCookie(&http.Cookie{Name: "jwt", Value: token})
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	state := func() string {
		var s string
		if err := b.pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1::bigint`, jobID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, h := range [][]string{
		{"Origin", "http://evil.example", "Sec-Fetch-Site", "same-site"},
		{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
	} {
		if status := cancel(h...); status != http.StatusForbidden {
			t.Errorf("cancel with %v: %d, want 403", h, status)
		}
	}
	if s := state(); s != "scheduled" {
		t.Fatalf("a refused cancel left the job %s", s)
	}
	if status := cancel("Origin", b.server.URL, "Sec-Fetch-Site", "same-origin"); status != http.StatusOK {
		t.Errorf("River's own cancel: %d", status)
	}
	if s := state(); s != "cancelled" {
		t.Errorf("River's own cancel left the job %s", s)
	}

	for _, path := range []string{"/riverui/", "/riverui/api/jobs?state=scheduled"} {
		req, _ := http.NewRequest("GET", b.server.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: "jwt", Value: token})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": "script-src 'self'", "X-Frame-Options": "DENY",
			"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		} {
			if !strings.Contains(resp.Header.Get(h), want) {
				t.Errorf("%s: %s = %q, want %q", path, h, resp.Header.Get(h), want)
			}
		}
	}
}
