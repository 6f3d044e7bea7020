// Command example is a client of trialsd's API, as an integration would
// write one: it signs a user up, logs in as them, starts their enterprise
// trial, and receives and verifies the trial.created webhook that follows,
// with the Standard Webhooks library rather than code of its own.
//
// It receives the webhook itself, on a loopback port, through an endpoint
// it adds with an admin's API key and removes when done, so it needs a
// daemon that allows private receivers (webhooks.allow_private_networks,
// which config.dev.yaml sets). docs/webhooks.md runs it:
//
//	TRIALSD_URL=http://127.0.0.1:4800 TRIALSD_ADMIN_KEY=ei_… go run .
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// client calls trialsd's API at base, with the credential header set
// (x-api-key for the admin, x-jwt-token for a logged-in user).
type client struct {
	base   string
	header string
	value  string
}

// call sends body (nil: none) as JSON and decodes the answer into out; an
// answer that is not 2xx or says "success": false is an error, with the
// API's own message.
func (c client) call(ctx context.Context, method, path string, body, out any) error {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.header != "" {
		req.Header.Set(c.header, c.value)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	var status struct {
		Success bool   `json:"success"`
		Error   string `json:"error"`
	}
	if res.StatusCode/100 != 2 || json.Unmarshal(raw, &status) != nil || !status.Success {
		return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// delivery is the part of a webhook this example reads.
type delivery struct {
	ID   string
	Type string `json:"type"`
	Data struct {
		Trial struct {
			ID    int64  `json:"id"`
			State string `json:"state"`
		} `json:"trial"`
		Sequence int64 `json:"sequence"`
	} `json:"data"`
}

// receiver answers webhooks on a loopback port and passes on each one
// whose signature verifies; the others get 400, so trialsd retries them.
type receiver struct {
	ln         net.Listener
	url        string
	wh         *standardwebhooks.Webhook
	deliveries chan delivery
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	// Verify the raw body as received: parsed and encoded again, it would
	// no longer match its signature.
	if err != nil || r.wh.Verify(body, req.Header) != nil {
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	d := delivery{ID: req.Header.Get("webhook-id")}
	if err := json.Unmarshal(body, &d); err != nil {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	r.deliveries <- d
}

// listen takes a free loopback port for the receiver, which serves once
// it knows its endpoint's secret.
func listen() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &receiver{ln: ln, url: "http://" + ln.Addr().String() + "/hooks", deliveries: make(chan delivery, 16)}, nil
}

// serve verifies deliveries with secret, the endpoint's (whsec_…).
func (r *receiver) serve(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	r.wh = wh
	go func() { _ = http.Serve(r.ln, r) }()
	return nil
}

// account is the user this example signs up.
type account struct {
	Name          string `json:"name"`
	Username      string `json:"username"`
	Email         string `json:"email"`
	Password      string `json:"password"`
	PrivacyPolicy bool   `json:"privacyPolicy"`
}

func newAccount() account {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	username := "go-example-" + hex.EncodeToString(b)
	return account{Name: "Go Example", Username: username, Email: username + "@example.com",
		Password: "correct horse battery staple", PrivacyPolicy: true}
}

// startTrial signs a up, logs in as them and starts their enterprise
// trial, as the Edge Impulse client's createProTierUser, getJWT and
// startEnterpriseTrial do.
func startTrial(ctx context.Context, base string, a account) (trialID int64, err error) {
	anonymous := client{base: base}
	var user struct{ ID int64 }
	if err := anonymous.call(ctx, "POST", "/v1/api-create-pro-user", a, &user); err != nil {
		return 0, fmt.Errorf("signing up: %w", err)
	}
	fmt.Printf("signed up user %d (%s)\n", user.ID, a.Username)
	var login struct{ Token string }
	creds := map[string]string{"username": a.Username, "password": a.Password}
	if err := anonymous.call(ctx, "POST", "/v1/api-login", creds, &login); err != nil {
		return 0, fmt.Errorf("logging in: %w", err)
	}
	asUser := client{base: base, header: "x-jwt-token", value: login.Token}
	var trial struct{ ID int64 }
	if err := asUser.call(ctx, "POST", "/v1/api/user/trial", map[string]string{"organizationName": a.Name + "'s team"}, &trial); err != nil {
		return 0, fmt.Errorf("starting the trial: %w", err)
	}
	fmt.Printf("started trial %d\n", trial.ID)
	return trial.ID, nil
}

// awaitCreated waits for the verified trial.created delivery of trialID.
func awaitCreated(ctx context.Context, r *receiver, trialID int64) (delivery, error) {
	for {
		select {
		case d := <-r.deliveries:
			if d.Type == "trial.created" && d.Data.Trial.ID == trialID {
				return d, nil
			}
		case <-ctx.Done():
			return delivery{}, errors.New("no verified trial.created webhook arrived in time")
		}
	}
}

func run(ctx context.Context) error {
	base, key := os.Getenv("TRIALSD_URL"), os.Getenv("TRIALSD_ADMIN_KEY")
	if base == "" || key == "" {
		return errors.New("set TRIALSD_URL (http://127.0.0.1:4800) and TRIALSD_ADMIN_KEY (an admin's API key)")
	}
	r, err := listen()
	if err != nil {
		return err
	}
	admin := client{base: base, header: "x-api-key", value: key}
	var ep struct {
		Endpoint struct{ ID int64 }
		Secret   string
	}
	spec := map[string]any{"url": r.url, "description": "examples/go", "eventTypes": []string{"trial.created"}}
	if err := admin.call(ctx, "POST", "/v1/api/admin/webhook-endpoints", spec, &ep); err != nil {
		return fmt.Errorf("adding the webhook endpoint: %w", err)
	}
	defer func() {
		_ = admin.call(context.Background(), "DELETE", fmt.Sprintf("/v1/api/admin/webhook-endpoints/%d", ep.Endpoint.ID), nil, nil)
	}()
	if err := r.serve(ep.Secret); err != nil {
		return err
	}
	trialID, err := startTrial(ctx, base, newAccount())
	if err != nil {
		return err
	}
	d, err := awaitCreated(ctx, r, trialID)
	if err != nil {
		return err
	}
	fmt.Printf("verified webhook %s: %s of trial %d (%s), sequence %d\n", d.ID, d.Type, d.Data.Trial.ID, d.Data.Trial.State, d.Data.Sequence)
	return nil
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}
