// Package httpapi is trialsd's HTTP edge: the Edge Impulse-compatible v1 API,
// health and readiness, and metrics. Handlers decode and validate the wire
// format, call the domain, and map its errors to the contract's statuses in
// one place (respond.go); they hold no lifecycle rules of their own.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/billing"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/enterprise"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/signup"
	"github.com/trialsd/trialsd/internal/turnstile"
)

// Deps are what the handlers need.
type Deps struct {
	Logger     *slog.Logger
	Config     *config.Config
	Accounts   *accounts.Service
	Tokens     *accounts.Tokens
	Limits     Limits
	Turnstile  *turnstile.Verifier
	Billing    *billing.Service
	Enterprise *enterprise.Service
	Signup     *signup.Service
	Lifecycle  *lifecycle.Service
	// Eligibility answers the pre-flight and the admins' grants.
	Eligibility *eligibility.Service
	// WebhookEndpoints manages the webhook endpoints (admin routes).
	WebhookEndpoints *outbox.Endpoints
	// Ready reports why the daemon cannot serve (database away, migrations
	// pending), or nil when it can.
	Ready func(ctx context.Context) error
	// Metrics serves /metrics on the API listener; nil when it has a listener
	// of its own (http.metrics_addr).
	Metrics http.Handler
	// Observer records request and sign-up metrics.
	Observer Observer
	// RiverUI, when set, is River's web UI, served to admins at /riverui/.
	RiverUI http.Handler
	// Clock is the time the console shows times against; nil: the wall
	// clock.
	Clock clock.Clock
}

func (d Deps) clock() clock.Clock {
	if d.Clock == nil {
		return clock.Real{}
	}
	return d.Clock
}

// Observer records what the HTTP edge sees; *metrics.Metrics is one.
type Observer interface {
	HTTPStarted() func(route, method string, status int)
	Signup(kind, outcome string)
}

// NewServer returns the whole HTTP API as one handler.
func NewServer(d Deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	var h http.Handler = mux
	h = refuseBadText(d.Logger, h)
	h = limitBody(h)
	h = recoverPanics(d.Logger, h)
	h = observeRequests(d.Logger, d.Observer, h)
	h = withRequestID(h)
	return h
}
