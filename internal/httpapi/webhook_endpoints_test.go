package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trialsd/trialsd/internal/outbox"
)

// deliverAll runs, as the daemon's workers would, the next attempt of every
// undelivered, unfailed webhook to endpoint id, and returns how many.
func (b *testBundle) deliverAll(t *testing.T, endpointID any) int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(),
		`SELECT id, attempts FROM outbox WHERE endpoint_id = $1 AND delivered_at IS NULL AND failed_at IS NULL ORDER BY id`, endpointID)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []outbox.Delivery
	for rows.Next() {
		var d outbox.Delivery
		if err := rows.Scan(&d.OutboxID, &d.Attempt); err != nil {
			t.Fatal(err)
		}
		d.Attempt++
		jobs = append(jobs, d)
	}
	rows.Close()
	for _, d := range jobs {
		if _, _, err := b.services.Outbox.Deliver(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	return len(jobs)
}

// The endpoint routes end to end: made with a secret that the Standard
// Webhooks library verifies deliveries with, filtered, listed, changed,
// rotated, its attempts logged, its failures recovered, removed.
func TestWebhookEndpointRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var status atomic.Int64
	status.Store(http.StatusInternalServerError)
	var verified, refused atomic.Int64
	var secret, last atomic.Value
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		last.Store(func(secret string) error {
			wh, _ := standardwebhooks.NewWebhook(secret)
			return wh.VerifyIgnoringTimestamp(body, r.Header) // the handler tests' clock is fixed in the past
		})
		if last.Load().(func(string) error)(secret.Load().(string)) == nil {
			verified.Add(1)
		} else {
			refused.Add(1)
		}
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(rcv.Close)

	if r := b.call(t, "POST", "/v1/api/admin/webhook-endpoints", b.admin, `{"url":"ftp://x"}`); r.status != http.StatusBadRequest {
		t.Fatalf("ftp URL: %d %v", r.status, r.body)
	}
	if r := b.call(t, "POST", "/v1/api/admin/webhook-endpoints", b.admin, `{"url":"`+rcv.URL+`","eventTypes":["trial.nope"]}`); r.status != http.StatusBadRequest {
		t.Fatalf("unknown event type: %d %v", r.status, r.body)
	}
	r := b.call(t, "POST", "/v1/api/admin/webhook-endpoints", b.admin, `{"url":"`+rcv.URL+`","description":"CRM","eventTypes":["trial.created"]}`)
	if r.status != http.StatusOK {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	secret.Store(r.body["secret"].(string))
	ep := r.body["endpoint"].(map[string]any)
	id := fmt.Sprint(ep["id"])
	path := "/v1/api/admin/webhook-endpoints/" + id
	if ep["readOnly"] != false || ep["disabled"] != false || ep["description"] != "CRM" {
		t.Fatalf("endpoint %v", ep)
	}
	if r := b.call(t, "GET", path, b.admin, ""); r.status != http.StatusOK || r.body["secret"] != nil {
		t.Fatalf("get: %d %v (the secret is shown only once)", r.status, r.body)
	}
	if r := b.call(t, "GET", "/v1/api/admin/webhook-endpoints", b.admin, ""); r.status != http.StatusOK || len(r.body["endpoints"].([]any)) != 1 {
		t.Fatalf("list: %d %v", r.status, r.body)
	}

	// A trial's creation reaches the endpoint, and fails twice: both attempts logged.
	fred := b.addUser(t, "fred")
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	for range 2 {
		if n := b.deliverAll(t, ep["id"]); n != 1 {
			t.Fatalf("%d deliveries waiting, want 1", n)
		}
	}
	r = b.call(t, "GET", path+"/attempts", b.admin, "")
	attempts, _ := r.body["attempts"].([]any)
	if r.status != http.StatusOK || len(attempts) != 2 || attempts[0].(map[string]any)["statusCode"] != float64(500) ||
		attempts[0].(map[string]any)["attempt"] != float64(2) {
		t.Fatalf("attempts: %d %v", r.status, r.body)
	}

	// Rotated, then recovered: the replay verifies with the new secret and,
	// during the overlap, with the old one.
	old := secret.Load().(string)
	r = b.call(t, "POST", path+"/rotate-secret", b.admin, "")
	if r.status != http.StatusOK || r.body["secret"] == old {
		t.Fatalf("rotate: %d %v", r.status, r.body)
	}
	secret.Store(r.body["secret"].(string))
	status.Store(http.StatusNoContent)
	r = b.call(t, "POST", path+"/recover", b.admin, `{"since":"`+t0.Format("2006-01-02T15:04:05.000Z")+`"}`)
	if r.status != http.StatusOK || r.body["recovered"] != float64(1) {
		t.Fatalf("recover: %d %v", r.status, r.body)
	}
	if n := b.deliverAll(t, ep["id"]); n != 1 || verified.Load() != 3 || refused.Load() != 0 {
		t.Fatalf("replayed %d; verified %d, refused %d; want every delivery verified", n, verified.Load(), refused.Load())
	}
	if err := last.Load().(func(string) error)(old); err != nil {
		t.Fatalf("the replay during the overlap does not verify with the old secret: %v", err)
	}

	r = b.call(t, "PUT", path, b.admin, `{"disabled":true,"description":"paused"}`)
	if ep := r.body["endpoint"].(map[string]any); r.status != http.StatusOK || ep["disabled"] != true || ep["disabledReason"] != "disabled by an admin" {
		t.Fatalf("disable: %d %v", r.status, r.body)
	}
	if r := b.call(t, "POST", path+"/recover", b.admin, `{"since":"2020-01-01T00:00:00.000Z"}`); r.status != http.StatusConflict {
		t.Fatalf("recover while disabled: %d %v", r.status, r.body)
	}
	if r := b.call(t, "DELETE", path, b.admin, ""); r.status != http.StatusOK {
		t.Fatalf("delete: %d %v", r.status, r.body)
	}
	if r := b.call(t, "GET", path, b.admin, ""); r.status != http.StatusNotFound {
		t.Fatalf("get after delete: %d %v", r.status, r.body)
	}
}
