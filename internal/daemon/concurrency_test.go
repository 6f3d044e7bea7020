package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/signature"
)

// raceBillingSecret signs the race's payment callbacks.
const raceBillingSecret = "race-billing-secret"

// raceOrg is one organization the operations fight over, with its trial.
type raceOrg struct {
	id, trialID int64
	public      string
}

// Every operation that locks a trial and its organization, fired at once
// at the same organizations, answers without a 5xx and leaves coherent rows:
// the paths share one lock order, so none deadlocks another. Before they
// did, v2 create-enterprise (organization, then trials) and the others
// (trial, then organization) answered 500 with "deadlock detected".
func TestConcurrentOperationsOnSameOrganizations(t *testing.T) {
	t.Parallel()
	const (
		orgs       = 6
		perWorker  = 30
		workersPer = 2
	)
	logs := &syncBuffer{}
	b := setupLogged(t, logs, func(c *config.Config) { c.Billing.CallbackSecret = raceBillingSecret })
	ctx := context.Background()
	targets := raceOrgs(t, b, orgs)
	// Every trial is due: the expiry batch claims them while the requests run.
	b.clock.Set(t0.Add(time.Hour))

	ops := map[string]func(o raceOrg, i int) (int, string){
		"v2 create-enterprise": func(o raceOrg, i int) (int, string) {
			body := fmt.Sprintf(`{"email":"owner-%d@bigcorp.example","idempotencyKey":"key-%d-%d","additionalAdmins":[]}`, o.id, i, rand.N(1<<30))
			return b.raw("POST", "/api/v2/organization/"+o.public+"/enterprise", b.admin, body)
		},
		"admin delete-organization": func(o raceOrg, i int) (int, string) {
			return b.raw("DELETE", fmt.Sprintf("/v1/api/admin/organizations/%d?fullDeletion=%t", o.id, i%2 == 0), b.admin, "")
		},
		"admin restore": func(o raceOrg, _ int) (int, string) {
			return b.raw("POST", fmt.Sprintf("/v1/api/admin/organizations/%d/restore", o.id), b.admin, "")
		},
		"admin upgrade": func(o raceOrg, _ int) (int, string) {
			return b.raw("POST", fmt.Sprintf("/v1/api/admin/trials/%d/upgrade", o.trialID), b.admin, "")
		},
		"admin delete-trial": func(o raceOrg, _ int) (int, string) {
			return b.raw("DELETE", fmt.Sprintf("/v1/api/admin/trials/%d", o.trialID), b.admin, "")
		},
		"payment callback": func(o raceOrg, i int) (int, string) {
			body := fmt.Sprintf(`{"id":"evt-%d-%d-%d","type":"payment.succeeded","organizationId":%d}`, o.id, i, rand.N(1<<30), o.id)
			return b.signed("/v1/billing/callback", body)
		},
		"expiry batch": func(o raceOrg, i int) (int, string) {
			var gen int64
			if err := b.pool.QueryRow(ctx, `SELECT schedule_gen FROM trials WHERE id = $1`, o.trialID).Scan(&gen); err != nil {
				return 0, err.Error()
			}
			if _, err := b.daemon.Lifecycle.Expire(ctx, o.trialID, gen, fmt.Sprintf("job:race-%d", i)); err != nil {
				return http.StatusInternalServerError, err.Error()
			}
			return http.StatusOK, ""
		},
	}

	var wg sync.WaitGroup
	var calls atomic.Int64
	failures := make(chan string, len(ops)*workersPer*perWorker)
	start := make(chan struct{})
	for name, op := range ops {
		for range workersPer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range perWorker {
					o := targets[rand.N(len(targets))]
					calls.Add(1)
					if status, body := op(o, i); status >= 500 || status == 0 {
						failures <- fmt.Sprintf("%s on organization %d: %d %s", name, o.id, status, body)
					}
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if log := logs.String(); strings.Contains(log, "40P01") || strings.Contains(log, "deadlock") {
		t.Errorf("the log reports a deadlock:\n%s", linesWith(log, "deadlock"))
	}
	t.Logf("%d operations on %d organizations", calls.Load(), orgs)
	checkCoherent(t, b, targets)
}

// raceOrgs starts n trials due in a minute, each in its own organization.
func raceOrgs(t *testing.T, b *testBundle, n int) []raceOrg {
	t.Helper()
	ctx := context.Background()
	admin, err := b.daemon.Accounts.UserByUsername(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	due := t0.Add(time.Minute)
	out := make([]raceOrg, n)
	for i := range out {
		started, err := b.daemon.Lifecycle.StartTrial(ctx, lifecycle.Actor{UserID: admin.ID, Admin: true},
			lifecycle.StartTrialRequest{ExpirationDate: &due}, "request:race")
		if err != nil {
			t.Fatal(err)
		}
		o := raceOrg{id: started.OrganizationID, trialID: started.TrialID}
		if err := b.pool.QueryRow(ctx, `SELECT public_id FROM organizations WHERE id = $1`, o.id).Scan(&o.public); err != nil {
			t.Fatal(err)
		}
		out[i] = o
	}
	return out
}

// raw makes a request and returns its status and body, whatever they are
// (status 0 and the error when it could not be made); goroutines call it.
func (b *testBundle) raw(method, path, key, body string) (int, string) {
	req, err := b.request(method, path, key, body)
	if err != nil {
		return 0, err.Error()
	}
	return send(req)
}

// signed posts body signed as the payment provider signs its callbacks.
func (b *testBundle) signed(path, body string) (int, string) {
	req, err := b.request("POST", path, "", body)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set(signature.Header, signature.Sign([]byte(raceBillingSecret), b.clock.Now(), []byte(body)))
	return send(req)
}

func send(req *http.Request) (int, string) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// checkCoherent asserts what every interleaving must leave: a deleted trial
// in a deleted organization, a live one in a live organization with the
// features its state gives, and a history that replays, one legal
// transition per event, to the state the row holds.
func checkCoherent(t *testing.T, b *testBundle, targets []raceOrg) {
	t.Helper()
	ctx := context.Background()
	for _, o := range targets {
		var state string
		var orgDeleted, features bool
		err := b.pool.QueryRow(ctx, `SELECT t.state, o.deleted_at IS NOT NULL, o.enterprise_features
			FROM trials t JOIN organizations o ON o.id = t.organization_id WHERE t.id = $1`, o.trialID).Scan(&state, &orgDeleted, &features)
		if err != nil {
			t.Fatalf("trial %d: %v", o.trialID, err)
		}
		switch state {
		case "deleted":
			if !orgDeleted {
				t.Errorf("trial %d is deleted, its organization %d is not", o.trialID, o.id)
			}
		case "active", "expired":
			if orgDeleted {
				t.Errorf("trial %d is %s, its organization %d is deleted", o.trialID, state, o.id)
			}
			if features != (state == "active") {
				t.Errorf("trial %d is %s, its organization's enterprise features are %t", o.trialID, state, features)
			}
		case "upgraded":
			if !features {
				t.Errorf("trial %d is upgraded, its organization has no enterprise features", o.trialID)
			}
		}
		if replayed := replay(t, b, o.trialID); replayed != state {
			t.Errorf("trial %d: its events replay to %q, the row says %q", o.trialID, replayed, state)
		}
	}
}

// replay runs a trial's events through the state machine and returns the
// state they lead to; an event its state does not allow fails the test.
func replay(t *testing.T, b *testBundle, trialID int64) string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT kind, data FROM trial_events WHERE trial_id = $1 ORDER BY id`, trialID)
	if err != nil {
		t.Fatal(err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[raceEvent])
	if err != nil {
		t.Fatal(err)
	}
	legal := map[string][]string{
		"trial.created":  {""},
		"trial.expired":  {"active"},
		"trial.deleted":  {"active", "expired"},
		"trial.restored": {"deleted"},
		"trial.upgraded": {"active", "expired"},
	}
	state := ""
	for i, ev := range events {
		from, ok := legal[ev.Kind]
		if !ok {
			continue // events that change no state
		}
		if !slices.Contains(from, state) {
			t.Errorf("trial %d event %d: %s while %q; its history: %s", trialID, i, ev.Kind, state, kindsOf(events))
			return "incoherent"
		}
		switch ev.Kind {
		case "trial.created":
			state = "active"
		case "trial.restored":
			var d struct{ State string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			state = d.State
		default:
			state = strings.TrimPrefix(ev.Kind, "trial.")
		}
	}
	return state
}

// raceEvent is what replay reads of an event.
type raceEvent struct {
	Kind string
	Data json.RawMessage
}

// kindsOf lists events' kinds, in order.
func kindsOf(events []raceEvent) string {
	kinds := make([]string, len(events))
	for i, e := range events {
		kinds[i] = e.Kind
	}
	return strings.Join(kinds, " ")
}

// linesWith returns the lines of text that contain s.
func linesWith(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
