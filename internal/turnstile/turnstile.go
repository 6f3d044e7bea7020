// Package turnstile verifies Cloudflare Turnstile tokens server-side, as
// public sign-ups must before writing anything.
package turnstile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/trialsd/trialsd/internal/config"
)

// ErrRejected means Cloudflare said the token is not valid (a bot, a replay,
// an expired challenge); other errors mean it could not be asked.
var ErrRejected = errors.New("turnstile rejected the token")

// Verifier asks Cloudflare's siteverify endpoint about tokens.
type Verifier struct {
	client *http.Client
	cfg    config.Turnstile
}

// New returns a verifier; with turnstile.enabled false every token passes.
func New(client *http.Client, cfg config.Turnstile) *Verifier {
	return &Verifier{client: client, cfg: cfg}
}

type siteverifyResponse struct {
	Success    bool     `json:"success"`
	ErrorCodes []string `json:"error-codes"`
}

// Verify checks token, as solved by the client at remoteIP.
func (v *Verifier) Verify(ctx context.Context, token, remoteIP string) error {
	if !v.cfg.Enabled {
		return nil
	}
	if token == "" {
		return fmt.Errorf("%w: no token", ErrRejected)
	}
	form := url.Values{"secret": {v.cfg.Secret}, "response": {token}}
	if remoteIP != "" {
		form.Set("remoteip", remoteIP)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.VerifyURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("building siteverify request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("calling siteverify: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("siteverify answered %s", resp.Status)
	}
	var out siteverifyResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("decoding siteverify answer: %w", err)
	}
	if !out.Success {
		return fmt.Errorf("%w: %s", ErrRejected, strings.Join(out.ErrorCodes, ", "))
	}
	return nil
}
