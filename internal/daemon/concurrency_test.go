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

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/signature"
	"github.com/trialsd/trialsd/internal/store"
)

// raceBillingSecret signs the race's payment callbacks.
const raceBillingSecret = "race-billing-secret"

// raceOrg is one organization the operations fight over, with its trials
// (every other one has two, so that locking several trials of one
// organization is raced too).
type raceOrg struct {
	id     int64
	trials []int64
	public string
}

// trial is one of the organization's trials, at random.
func (o raceOrg) trial() int64 { return o.trials[rand.N(len(o.trials))] }

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
			// The owner's address is verified, so every create attaches them.
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
			return b.raw("POST", fmt.Sprintf("/v1/api/admin/trials/%d/upgrade", o.trial()), b.admin, "")
		},
		"admin delete-trial": func(o raceOrg, _ int) (int, string) {
			return b.raw("DELETE", fmt.Sprintf("/v1/api/admin/trials/%d", o.trial()), b.admin, "")
		},
		"payment callback": func(o raceOrg, i int) (int, string) {
			body := fmt.Sprintf(`{"id":"evt-%d-%d-%d","type":"payment.succeeded","organizationId":%d}`, o.id, i, rand.N(1<<30), o.id)
			return b.signed("/v1/billing/callback", body)
		},
		"expiry batch": func(o raceOrg, i int) (int, string) {
			trial := o.trial()
			var gen int64
			if err := b.pool.QueryRow(ctx, `SELECT schedule_gen FROM trials WHERE id = $1`, trial).Scan(&gen); err != nil {
				return 0, err.Error()
			}
			if _, err := b.daemon.Services().Lifecycle.Expire(ctx, trial, gen, fmt.Sprintf("job:race-%d", i)); err != nil {
				return http.StatusInternalServerError, err.Error()
			}
			return http.StatusOK, ""
		},
	}

	abortsBefore := store.AbortsSoFar()
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
		t.Errorf("the log reports a deadlock:\n%s", keepLines(log, func(l string) bool { return strings.Contains(l, "deadlock") }))
	}
	// The retry would hide a deadlock from the answers and the log; the
	// store counts every one Postgres aborted.
	if after := store.AbortsSoFar(); after != abortsBefore {
		t.Errorf("transactions aborted by Postgres during the race: %+v, before %+v", after, abortsBefore)
	}
	var enterprises int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM enterprises`).Scan(&enterprises); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d operations on %d organizations, %d enterprises created", calls.Load(), orgs, enterprises)
	checkCoherent(t, b, targets)
}

// raceOrgs starts n trials due in a minute, each in its own organization,
// adds a second trial to every other organization (no API makes one, the
// schema allows it), and a verified owner for each organization's
// enterprise.
func raceOrgs(t *testing.T, b *testBundle, n int) []raceOrg {
	t.Helper()
	ctx := context.Background()
	admin, err := b.daemon.Services().Accounts.UserByUsername(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	due := t0.Add(time.Minute)
	out := make([]raceOrg, n)
	for i := range out {
		started, err := b.daemon.Services().Lifecycle.StartTrial(ctx, domain.Actor{UserID: admin.ID, Admin: true},
			lifecycle.StartTrialRequest{ExpirationDate: &due}, "request:race")
		if err != nil {
			t.Fatal(err)
		}
		o := raceOrg{id: started.OrganizationID, trials: []int64{started.TrialID}}
		if err := b.pool.QueryRow(ctx, `SELECT public_id FROM organizations WHERE id = $1`, o.id).Scan(&o.public); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			var second int64
			err := b.pool.QueryRow(ctx, `
				WITH t AS (INSERT INTO trials (user_id, organization_id, self_service, created_at, expiration_date)
					SELECT user_id, organization_id, false, created_at, expiration_date FROM trials WHERE id = $1 RETURNING id, created_at)
				INSERT INTO trial_events (trial_id, kind, at, actor, cause, data)
				SELECT id, 'trial.created', created_at, 'system', 'request:race', '{}' FROM t RETURNING trial_id`, started.TrialID).Scan(&second)
			if err != nil {
				t.Fatal(err)
			}
			o.trials = append(o.trials, second)
		}
		if _, err := b.pool.Exec(ctx, `INSERT INTO users (username, email, name, email_verified, created_at, updated_at)
			VALUES ($1, $2, 'Owner', true, $3, $3)`, fmt.Sprintf("owner-%d", o.id), fmt.Sprintf("owner-%d@bigcorp.example", o.id), t0); err != nil {
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
// in a deleted organization, a live one in a live organization (with the
// features its state gives, where it is the organization's only trial),
// and a history that replays, one legal transition per event, to the state
// the row holds.
func checkCoherent(t *testing.T, b *testBundle, targets []raceOrg) {
	t.Helper()
	ctx := context.Background()
	for _, o := range targets {
		for _, id := range o.trials {
			var state string
			var orgDeleted, features bool
			err := b.pool.QueryRow(ctx, `SELECT t.state, o.deleted_at IS NOT NULL, o.enterprise_features
				FROM trials t JOIN organizations o ON o.id = t.organization_id WHERE t.id = $1`, id).Scan(&state, &orgDeleted, &features)
			if err != nil {
				t.Fatalf("trial %d: %v", id, err)
			}
			alone := len(o.trials) == 1
			switch state {
			case "deleted":
				if !orgDeleted {
					t.Errorf("trial %d is deleted, its organization %d is not", id, o.id)
				}
			case "active", "expired":
				if orgDeleted {
					t.Errorf("trial %d is %s, its organization %d is deleted", id, state, o.id)
				}
				if alone && features != (state == "active") {
					t.Errorf("trial %d is %s, its organization's enterprise features are %t", id, state, features)
				}
			case "upgraded":
				if alone && !features {
					t.Errorf("trial %d is upgraded, its organization has no enterprise features", id)
				}
			}
			if replayed := replay(t, b, id); replayed != state {
				t.Errorf("trial %d: its events replay to %q, the row says %q", id, replayed, state)
			}
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
