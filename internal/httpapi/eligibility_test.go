package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/config"
)

// signups numbers the sign-ups of the eligibility tests: each comes from
// a client address of its own, under the sign-up rate limit.
var signups atomic.Int64

// signUp is the public enterprise-trial sign-up of a new user at email.
func (b *testBundle) signUp(t testing.TB, email string) response {
	t.Helper()
	n := signups.Add(1)
	body := signupBody(t, map[string]any{"username": fmt.Sprintf("user%d", n), "email": email})
	req, _ := http.NewRequest("POST", b.server.URL+signupPath, strings.NewReader(body))
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255))
	return b.do(t, req)
}

// expectSignups signs up each address in turn and checks its answer: 200,
// or 409 with the refusal's message.
func (b *testBundle) expectSignups(t testing.TB, steps ...signupStep) {
	t.Helper()
	for _, s := range steps {
		r := b.signUp(t, s.email)
		switch {
		case s.refused == "" && r.status != http.StatusOK:
			t.Fatalf("sign-up of %s: %d %v, want it accepted", s.email, r.status, r.body)
		case s.refused != "" && (r.status != http.StatusConflict || r.body["success"] != false ||
			!strings.Contains(fmt.Sprint(r.body["error"]), s.refused)):
			t.Fatalf("sign-up of %s: %d %v, want 409 saying %q", s.email, r.status, r.body, s.refused)
		}
	}
}

type signupStep struct {
	email string
	// refused is part of the refusal's message; empty: accepted.
	refused string
}

const (
	usedMsg       = "This e-mail address has already had an enterprise trial"
	activeMsg     = "Your company already has an active trial; ask its admin to add you, or contact sales."
	limitMsg      = "Your company has had all the trials it can have for now"
	disposableMsg = "disposable addresses cannot start a trial"
)

func ok(email string) signupStep           { return signupStep{email: email} }
func refused(email, msg string) signupStep { return signupStep{email: email, refused: msg} }
func noDomainLimits(cfg *config.Config) {
	cfg.Eligibility.ActivePerDomain, cfg.Eligibility.TrialsPerDomain = 0, 0
}
func onlyTrialsPerDomain(cfg *config.Config) { cfg.Eligibility.ActivePerDomain = 0 }

func TestOneTrialPerNormalizedAddress(t *testing.T) {
	t.Parallel()
	b := setup(t, noDomainLimits)
	b.expectSignups(t, ok("fred@bedrock.example"),
		refused("Fred+again@Bedrock.example", usedMsg),
		ok("wilma@bedrock.example"))
	// Gmail ignores dots; the admin API is refused as the sign-up is.
	b.exec(t, `INSERT INTO users (username, email, name, created_at, updated_at) VALUES
		('barney1', 'barney.rubble@gmail.com', 'Barney', now(), now()), ('barney2', 'BarneyRubble+2@googlemail.com', 'Barney', now(), now())`)
	if r := b.post(t, "/v1/api/admin/trials", `{"userId":`+b.scalar(t, `SELECT id FROM users WHERE username = 'barney1'`)+`}`); r.status != http.StatusOK {
		t.Fatalf("admin trial of barney1: %d %v", r.status, r.body)
	}
	r := b.post(t, "/v1/api/admin/trials", `{"userId":`+b.scalar(t, `SELECT id FROM users WHERE username = 'barney2'`)+`}`)
	if r.status != http.StatusConflict || !strings.Contains(fmt.Sprint(r.body["error"]), usedMsg) {
		t.Fatalf("admin trial of barney2, the same Gmail mailbox: %d %v, want 409", r.status, r.body)
	}
}

func TestOneActiveTrialPerCompany(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.expectSignups(t, ok("fred@quarry.example"),
		refused("barney@quarry.example", activeMsg),
		refused("wilma@eu.mail.quarry.example", activeMsg), // one company, whatever the subdomain
		ok("betty@gravel.example"))
	// Once fred's trial has expired, the company may have another.
	if r := b.call(t, "PUT", "/v1/api/admin/trials/1", b.admin, `{"expirationDate":"2026-06-30T00:00:00Z"}`); r.status != http.StatusOK {
		t.Fatalf("expire fred's trial: %d %v", r.status, r.body)
	}
	b.expectSignups(t, ok("barney@quarry.example"))
	if got := b.scrapeLine(t, `trialsd_trial_refusals_total{reason="domain_active"}`); got != "2" {
		t.Errorf("trialsd_trial_refusals_total{reason=\"domain_active\"} = %s, want 2", got)
	}
}

func TestTrialsPerCompanyWithinTheWindow(t *testing.T) {
	t.Parallel()
	b := setup(t, onlyTrialsPerDomain)
	b.expectSignups(t, ok("a@quarry.example"), ok("b@quarry.example"), ok("c@quarry.example"),
		refused("d@quarry.example", limitMsg))
	b.clock.Advance(365*24*time.Hour + time.Second) // the window has moved past the three
	b.expectSignups(t, ok("d@quarry.example"))
}

func TestExemptAndOwnLimitsOfACompany(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *config.Config) { cfg.Eligibility.ExemptDomains = []string{"eu.bigcorp.example"} })
	b.expectSignups(t, ok("a@bigcorp.example"), ok("b@bigcorp.example"), ok("c@bigcorp.example"), ok("d@bigcorp.example"))
	// An admin gives a company two trials at a time.
	if r := b.call(t, "PUT", "/v1/api/admin/trial-eligibility/domains/quarry.example", b.admin,
		`{"activeLimit":2,"trialsLimit":0,"note":"pilot with two teams"}`); r.status != http.StatusOK {
		t.Fatalf("set limits: %d %v", r.status, r.body)
	}
	b.expectSignups(t, ok("a@quarry.example"), ok("b@quarry.example"), refused("c@quarry.example", activeMsg))
}

func TestDisposableAddressesAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *config.Config) { cfg.Eligibility.DisposableAdd = []string{"burner.example"} })
	b.expectSignups(t, refused("fred@mailinator.com", disposableMsg), refused("fred@eu.guerrillamail.com", disposableMsg),
		refused("fred@burner.example", disposableMsg), ok("fred@bedrock.example"))
	if got := b.scrapeLine(t, `trialsd_trial_refusals_total{reason="disposable"}`); got != "3" {
		t.Errorf("trialsd_trial_refusals_total{reason=\"disposable\"} = %s, want 3", got)
	}
}

func TestAdminGrantLetsOneTrialThrough(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.expectSignups(t, ok("fred@quarry.example"), refused("barney@quarry.example", activeMsg))
	for _, bad := range []string{`{"domain":"quarry.example"}`, `{"note":"why"}`, `{"email":"x@quarry.example","domain":"quarry.example","note":"both"}`} {
		if r := b.post(t, "/v1/api/admin/trial-eligibility/grants", bad); r.status != http.StatusBadRequest {
			t.Errorf("grant %s: %d %v, want 400", bad, r.status, r.body)
		}
	}
	r := b.post(t, "/v1/api/admin/trial-eligibility/grants", `{"domain":"Quarry.example","note":"second team, deal 42"}`)
	if r.status != http.StatusOK || r.body["id"] == nil {
		t.Fatalf("grant: %d %v", r.status, r.body)
	}
	// The pre-flight says what the start will do: let barney in.
	for _, admin := range []bool{false, true} {
		p := b.preflight(t, "barney@quarry.example", admin)
		if p.body["eligible"] != true || (admin && (p.body["grantId"] != r.body["id"] || p.body["reason"] != "domain_active")) {
			t.Errorf("pre-flight (admin %v) with the grant unused: %v; want eligible through grant %v", admin, p.body, r.body["id"])
		}
	}
	b.expectSignups(t, ok("barney@quarry.example"), refused("wilma@quarry.example", activeMsg))
	data := b.scalar(t, `SELECT data->'eligibilityGrant' FROM trial_events WHERE trial_id = 2 AND kind = 'trial.created'`)
	if !strings.Contains(data, `"note": "second team, deal 42"`) || !strings.Contains(data, `"grantedBy": "admin:1"`) {
		t.Errorf("the trial's created event holds %s, want the grant's actor and note", data)
	}
	// A grant to an address lifts the address's own rule too.
	b.exec(t, `UPDATE users SET email = 'fred+old@quarry.example' WHERE email = 'fred@quarry.example'`)
	b.expectSignups(t, refused("fred@quarry.example", usedMsg))
	if r := b.post(t, "/v1/api/admin/trial-eligibility/grants", `{"email":"fred@quarry.example","note":"renewal"}`); r.status != http.StatusOK {
		t.Fatalf("grant: %d %v", r.status, r.body)
	}
	b.expectSignups(t, ok("fred@quarry.example"))
}

// Twenty sign-ups from one company at once: the rules are checked in the
// transaction that creates the trial, so one gets the trial and nineteen
// the refusal, and nothing of theirs is left behind.
func TestParallelSignupsOfOneCompany(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = b.signUp(t, fmt.Sprintf("person%d@rush.example", i)).status })
	}
	wg.Wait()
	accepted := 0
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			accepted++
		case http.StatusConflict:
		default:
			t.Errorf("sign-up %d: %d", i, s)
		}
	}
	users, _, trials, _ := b.counts(t)
	if accepted != 1 || trials != 1 || users != 2 { // the admin and the one accepted
		t.Errorf("%d accepted, %d trials, %d users; want 1, 1 and 2", accepted, trials, users)
	}
}

// scrapeLine is the value of one series in the handler's /metrics.
func (b *testBundle) scrapeLine(t *testing.T, series string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", b.server.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for line := range strings.Lines(sb.String()) {
		if v, found := strings.CutPrefix(strings.TrimSpace(line), series+" "); found {
			return v
		}
	}
	return "absent"
}

// The pre-flight tells an anonymous caller the same, in the same words, of
// an address with an account and trial and of one nobody has: only the
// domain's rules apply to them. An admin gets the rule and the history.
func TestPreflightDoesNotEnumerate(t *testing.T) {
	t.Parallel()
	b := setup(t, noDomainLimits, func(cfg *config.Config) {
		cfg.Eligibility.PreflightRateLimit = config.RateLimit{Events: 6, Per: time.Minute}
	})
	b.expectSignups(t, ok("fred@bedrock.example"))
	ask := func(email string) response { return b.preflight(t, email, false) }
	existing, unknown := ask("fred@bedrock.example"), ask("nobody@bedrock.example")
	if !reflect.DeepEqual(existing.body, unknown.body) || existing.body["eligible"] != true {
		t.Errorf("anonymous pre-flights differ: fred (who had a trial) %v, nobody %v; want both the same, eligible", existing.body, unknown.body)
	}
	if r := ask("fred@mailinator.com"); r.body["eligible"] != false || r.body["reason"] != "not_eligible" || r.body["domain"] != nil {
		t.Errorf("anonymous pre-flight of a disposable address: %v, want not eligible with only the generic reason", r.body)
	}
	admin := b.preflight(t, "Fred+x@bedrock.example", true)
	history, _ := admin.body["history"].([]any)
	if admin.body["reason"] != "address_used" || len(history) != 1 || history[0].(map[string]any)["ofAddress"] != true {
		t.Errorf("admin pre-flight of fred: %d %v, want address_used and his trial in the history", admin.status, admin.body)
	}
	if r := b.call(t, "GET", "/v1/api/trial-eligibility?email=not-an-address", "", ""); r.status != http.StatusBadRequest {
		t.Errorf("pre-flight of a bad address: %d %v, want 400", r.status, r.body)
	}
	// Six a minute per client, and the sign-up above counted none.
	ask("a@bedrock.example")
	ask("b@bedrock.example")
	if r := b.call(t, "GET", "/v1/api/trial-eligibility?email=c@bedrock.example", "", ""); r.status != http.StatusTooManyRequests {
		t.Errorf("seventh anonymous pre-flight: %d, want 429", r.status)
	}
}

// A trial's console page shows its company's history, and grants a trial
// the rules refuse; the grant is recorded with the admin and the note.
func TestConsoleShowsTheCompanyAndGrants(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.expectSignups(t, ok("fred@quarry.example"), refused("barney@quarry.example", activeMsg))
	br := consoleLogin(t, b)
	_, body := br.get("/console/trials/1")
	for _, want := range []string{"Eligibility of quarry.example", "would be refused now (address_used)",
		"1 active (limit 1), 1 started in the last 365 days (limit 3)", `<a href="/console/trials/1">1</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the trial page lacks %q:\n%.4000s", want, body)
		}
	}
	form := url.Values{"scope": {"domain"}, "note": {"second team <b>"}, "confirm": {"yes"}}
	if resp, body := br.post("/console/trials/1/eligibility-grant", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("grant: %d\n%.2000s", resp.StatusCode, body)
	}
	if _, body := br.get("/console/trials/1?done=eligibility-grant"); !strings.Contains(body, "one trial for quarry.example, by admin:") ||
		!strings.Contains(body, "second team &lt;b&gt;") || !strings.Contains(body, "One more trial was granted") {
		t.Errorf("the trial page does not show the grant:\n%.6000s", body)
	}
	b.expectSignups(t, ok("barney@quarry.example"))
	if resp, _ := br.post("/console/trials/1/eligibility-grant", url.Values{"scope": {"domain"}, "note": {"x"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unconfirmed grant: %d, want 400", resp.StatusCode)
	}
	// A report that fails leaves its section out, not the trial's page.
	if _, err := b.pool.Exec(context.Background(), `ALTER TABLE eligibility_grants RENAME TO eligibility_grants_away`); err != nil {
		t.Fatal(err)
	}
	resp, body := br.get("/console/trials/1")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "Eligibility of") || !strings.Contains(body, "fred@quarry.example") {
		t.Errorf("the trial page with its eligibility report failing: %d\n%.3000s", resp.StatusCode, body)
	}
}

// BenchmarkPreflightAnonymous measures the anonymous pre-flight of an
// address that has an account and had a trial against one nobody has, 200
// calls of each, interleaved, per iteration: the medians and their ratio
// say whether an outsider could tell them apart by time.
//
//	go test -run '^$' -bench PreflightAnonymous -benchtime 5x ./internal/httpapi
func BenchmarkPreflightAnonymous(b *testing.B) {
	bundle := setup(b, noDomainLimits, func(cfg *config.Config) {
		cfg.Eligibility.PreflightRateLimit = config.RateLimit{Events: 1 << 30, Per: time.Second}
	})
	bundle.expectSignups(b, ok("fred@bedrock.example"))
	ask := func(email string) time.Duration {
		req, _ := http.NewRequest("GET", bundle.server.URL+"/v1/api/trial-eligibility?email="+url.QueryEscape(email), nil)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	const calls = 200
	var existing, unknown []time.Duration
	for b.Loop() {
		for i := range calls {
			existing = append(existing, ask("fred@bedrock.example"))
			unknown = append(unknown, ask(fmt.Sprintf("nobody%d@bedrock.example", i)))
		}
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds())
	}
	e, u := median(existing), median(unknown)
	b.ReportMetric(e, "existing-µs/call")
	b.ReportMetric(u, "unknown-µs/call")
	b.ReportMetric(e/u, "existing/unknown")
}

// preflight asks the pre-flight about email, as an admin or anonymously,
// and wants an answer.
func (b *testBundle) preflight(t *testing.T, email string, admin bool) response {
	t.Helper()
	key := ""
	if admin {
		key = b.admin
	}
	r := b.call(t, "GET", "/v1/api/trial-eligibility?email="+url.QueryEscape(email), key, "")
	if r.status != http.StatusOK {
		t.Fatalf("pre-flight of %s: %d %v", email, r.status, r.body)
	}
	return r
}
