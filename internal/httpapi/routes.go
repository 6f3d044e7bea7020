package httpapi

import (
	"net/http"

	"github.com/trialsd/trialsd/internal/console"
	"github.com/trialsd/trialsd/internal/emails"
)

// addRoutes is the whole API surface, in one screen.
func addRoutes(mux *http.ServeMux, d Deps) {
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d.Ready))
	mux.Handle("GET /v1/openapi.yaml", handleOpenAPI())
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics)
	}

	auth := authenticator{logger: d.Logger, accounts: d.Accounts, tokens: d.Tokens}
	user, jwtUser := auth.require(anyCredential, respondError), auth.require(jwtOnly, respondError)
	userV2 := auth.require(anyCredential, respondErrorV2)
	adminOnly := requireAdmin(d.Logger)
	admin := func(h http.Handler) http.Handler { return user(adminOnly(h)) }
	lc, log, origins := d.Lifecycle, d.Logger, d.Config.HTTP.RedirectOrigins

	gate := loginGate{tokens: d.Tokens, limits: d.Limits, trusted: d.Config.HTTP.TrustedProxies}
	mux.Handle("POST /v1/api-login", handleLogin(log, gate))
	mux.Handle("POST /v1/billing/callback", handleBillingCallback(log, d.Billing))
	mux.Handle("POST /v1/api-user-create-enterprise-trial", handleCreateEnterpriseTrialUser(log, d.Observer, d.Signup, d.Turnstile, d.Limits, d.Config))

	mux.Handle("GET "+emails.UnsubscribePath, handleUnsubscribePage())
	mux.Handle("POST "+emails.UnsubscribePath, handleUnsubscribe(log, lc))

	mux.Handle("POST /v1/api-create-pro-user", handleCreateProUser(log, d.Observer, d.Signup, d.Turnstile, d.Limits, d.Config))
	mux.Handle("POST /v1/api/user/activate", user(handleActivate(log, d.Signup, d.Limits)))
	mux.Handle("POST /v1/api/user/request-activation", user(handleRequestActivation(log, d.Signup, d.Limits)))

	mux.Handle("POST /v1/api/user/trial", user(handleStartTrial(log, lc, origins)))
	mux.Handle("GET /v1/api/users/{userId}/trials", jwtUser(handleListUserTrials(log, lc)))
	mux.Handle("POST /v1/api/organizations/{organizationId}/trial/request-extension", user(handleRequestExtension(log, lc, d.Limits)))

	addEligibilityRoutes(mux, d, auth, admin)
	mux.Handle("POST /v1/api/admin/trials", admin(handleAdminCreateTrial(log, lc)))
	mux.Handle("GET /v1/api/admin/trials/upcoming", admin(handleAdminUpcoming(log, lc)))
	mux.Handle("GET /v1/api/admin/trials/{enterpriseTrialId}", admin(handleAdminGetTrial(log, lc)))
	mux.Handle("PUT /v1/api/admin/trials/{enterpriseTrialId}", admin(handleAdminUpdateTrial(log, lc)))
	mux.Handle("DELETE /v1/api/admin/trials/{enterpriseTrialId}", admin(handleAdminDeleteTrial(log, lc)))
	mux.Handle("POST /v1/api/admin/trials/{enterpriseTrialId}/upgrade", admin(handleAdminUpgradeTrial(log, lc)))
	mux.Handle("GET /v1/api/admin/trials/{enterpriseTrialId}/events", admin(handleAdminTrialEvents(log, lc)))
	mux.Handle("DELETE /v1/api/admin/organizations/{organizationId}", admin(handleAdminDeleteOrganization(log, lc)))
	mux.Handle("POST /v1/api/admin/organizations/{organizationId}/restore", admin(handleAdminRestoreOrganization(log, lc)))

	if d.Config.TestClocks.Enabled { // off in production: the routes answer 404
		mux.Handle("POST /v1/api/admin/test-clocks", admin(handleCreateTestClock(log, lc)))
		mux.Handle("GET /v1/api/admin/test-clocks", admin(handleListTestClocks(log, lc)))
		mux.Handle("GET /v1/api/admin/test-clocks/{testClockId}", admin(handleGetTestClock(log, lc)))
		mux.Handle("POST /v1/api/admin/test-clocks/{testClockId}/advance", admin(handleAdvanceTestClock(log, lc)))
		mux.Handle("DELETE /v1/api/admin/test-clocks/{testClockId}", admin(handleDeleteTestClock(log, lc)))
	}
	eps := d.WebhookEndpoints
	mux.Handle("POST /v1/api/admin/webhook-endpoints", admin(handleCreateEndpoint(log, eps)))
	mux.Handle("GET /v1/api/admin/webhook-endpoints", admin(handleListEndpoints(log, eps)))
	mux.Handle("GET /v1/api/admin/webhook-endpoints/{endpointId}", admin(handleGetEndpoint(log, eps)))
	mux.Handle("PUT /v1/api/admin/webhook-endpoints/{endpointId}", admin(handleUpdateEndpoint(log, eps)))
	mux.Handle("DELETE /v1/api/admin/webhook-endpoints/{endpointId}", admin(handleDeleteEndpoint(log, eps)))
	mux.Handle("POST /v1/api/admin/webhook-endpoints/{endpointId}/rotate-secret", admin(handleRotateEndpointSecret(log, eps)))
	mux.Handle("GET /v1/api/admin/webhook-endpoints/{endpointId}/attempts", admin(handleEndpointAttempts(log, eps)))
	mux.Handle("POST /v1/api/admin/webhook-endpoints/{endpointId}/recover", admin(handleRecoverEndpoint(log, eps)))

	mux.Handle("POST /api/v2/organization/{organizationId}/enterprise", userV2(handleCreateEnterprise(log, d.Enterprise)))

	// River's UI sends a browser that is not logged in to the console's
	// login page, when there is one.
	riverUIUser := user
	if d.Config.Console.Enabled {
		riverUIUser = auth.require(anyCredential, toLoginPage(respondError))
		console.Routes(mux, console.Deps{
			Host: consoleHost{logger: log, auth: auth, gate: gate}, Logger: log, Clock: d.clock(), Lifecycle: lc, Endpoints: eps, Eligibility: d.Eligibility,
			TestClocks: d.Config.TestClocks.Enabled, RiverUI: d.RiverUI != nil,
		})
	}
	if d.RiverUI != nil {
		// The console's headers (with a policy River's UI can run under)
		// and its origin rule: River's UI takes an admin's cookie too.
		sameOrigin := console.SameOriginOnly(func(w http.ResponseWriter, r *http.Request, err error) { respondError(w, r, log, err) })
		mux.Handle("/riverui/", console.SecurityHeaders(riverUICSP, sameOrigin(riverUIUser(adminOnly(d.RiverUI)))))
	}

	mux.Handle(unrouted, handleUnrouted(mux))
}
