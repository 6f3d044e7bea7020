package httpapi

import (
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/ratelimit"
	"github.com/trialsd/trialsd/internal/wire"
)

// eligibilityResponse is the pre-flight's answer. An anonymous caller gets
// success, eligible and, when not, the generic reason and message; an
// admin gets the rest.
type eligibilityResponse struct {
	Success  bool               `json:"success"`
	Eligible bool               `json:"eligible"`
	Reason   string             `json:"reason,omitempty"`
	Message  string             `json:"message,omitempty"`
	Domain   string             `json:"domain,omitempty"`
	GrantID  *int64             `json:"grantId,omitempty"`
	Limits   *eligibilityLimits `json:"limits,omitempty"`
	Counts   *eligibilityCounts `json:"counts,omitempty"`
	History  []eligibilityTrial `json:"history,omitempty"`
	Grants   []eligibilityGrant `json:"grants,omitempty"`
}

type eligibilityLimits struct {
	ActiveLimit int    `json:"activeLimit"`
	TrialsLimit int    `json:"trialsLimit"`
	WindowDays  int    `json:"windowDays"`
	Source      string `json:"source"`
}

type eligibilityCounts struct {
	AddressTrials int `json:"addressTrials"`
	DomainActive  int `json:"domainActive"`
	DomainRecent  int `json:"domainRecent"`
}

type eligibilityTrial struct {
	TrialID     int64   `json:"trialId"`
	Started     string  `json:"started"`
	State       string  `json:"state"`
	Outcome     *string `json:"outcome"`
	ExpiredDate *string `json:"expiredDate"`
	DeletedDate *string `json:"deletedDate"`
	PurgedDate  *string `json:"purgedDate"`
	OfAddress   bool    `json:"ofAddress"`
	GrantID     *int64  `json:"grantId"`
}

type eligibilityGrant struct {
	ID        int64   `json:"id"`
	Subject   string  `json:"subject"`
	Note      string  `json:"note"`
	GrantedBy string  `json:"grantedBy"`
	Granted   string  `json:"granted"`
	TrialID   *int64  `json:"trialId"`
	Used      *string `json:"used"`
}

// anonymousReason is the one reason an anonymous pre-flight gives.
const anonymousReason = "not_eligible"

func eligibilityOf(r eligibility.Report, full bool) eligibilityResponse {
	out := eligibilityResponse{Success: true, Eligible: r.Eligible, Message: r.Message}
	if !full {
		if !r.Eligible {
			out.Reason = anonymousReason
		}
		return out
	}
	out.Reason, out.Domain = r.Reason, r.Domain
	if r.Grant != nil {
		out.GrantID = &r.Grant.ID
	}
	out.Limits = &eligibilityLimits{ActiveLimit: r.Limits.Active, TrialsLimit: r.Limits.Trials,
		WindowDays: r.Limits.WindowDays(), Source: r.Limits.Source}
	out.Counts = &eligibilityCounts{AddressTrials: r.Counts.AddressTrials, DomainActive: r.Counts.DomainActive, DomainRecent: r.Counts.DomainRecent}
	for _, t := range r.History {
		out.History = append(out.History, eligibilityTrial{
			TrialID: t.TrialID, Started: wire.Format(t.StartedAt), State: t.State, Outcome: nonEmpty(t.Outcome),
			OfAddress: t.OfAddress, GrantID: t.GrantID,
			ExpiredDate: formatPtr(t.ExpiredAt), DeletedDate: formatPtr(t.DeletedAt), PurgedDate: formatPtr(t.PurgedAt),
		})
	}
	for _, g := range r.Grants {
		out.Grants = append(out.Grants, eligibilityGrant{
			ID: g.ID, Subject: g.Subject, Note: g.Note, GrantedBy: g.GrantedBy, Granted: wire.Format(g.GrantedAt),
			TrialID: g.TrialID, Used: formatPtr(g.UsedAt),
		})
	}
	return out
}

// addEligibilityRoutes serves the pre-flight, to anyone, and the admins'
// grants and domain limits, behind admin.
func addEligibilityRoutes(mux *http.ServeMux, d Deps, auth authenticator, admin func(http.Handler) http.Handler) {
	log, rules := d.Logger, d.Eligibility
	mux.Handle("GET /v1/api/trial-eligibility", handleTrialEligibility(log, rules,
		preflight{auth: auth, limit: d.Limits.Preflight, trusted: d.Config.HTTP.TrustedProxies}))
	mux.Handle("POST /v1/api/admin/trial-eligibility/grants", admin(handleAdminGrantTrial(log, rules)))
	mux.Handle("PUT /v1/api/admin/trial-eligibility/domains/{domain}", admin(handleAdminDomainLimits(log, rules)))
}

// preflight is what the eligibility pre-flight needs beside the rules.
type preflight struct {
	auth    authenticator
	limit   *ratelimit.Limiter
	trusted []netip.Prefix
}

// handleTrialEligibility is the pre-flight: GET
// /v1/api/trial-eligibility?email=. It needs no login; a caller that sends
// credentials must send valid ones, and an admin's get the full answer
// (and may ask about ?domain=). Anonymous callers are rate-limited per
// client, and whatever they ask the answer depends on the address's
// domain only.
func handleTrialEligibility(logger *slog.Logger, rules *eligibility.Service, p preflight) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		admin := false
		if hasCredentials(r) {
			u, err := p.auth.resolve(r, anyCredential)
			if err != nil {
				respondError(w, r, logger, err)
				return
			}
			admin = u.IsAdmin
		}
		if !admin {
			if err := allow(p.limit, clientKey(r, p.trusted)); err != nil {
				respondError(w, r, logger, err)
				return
			}
		}
		sub := eligibility.Subject{Email: r.URL.Query().Get("email")}
		check := func() (eligibility.Report, error) { return rules.Check(r.Context(), sub, false) }
		if admin {
			sub.Domain = r.URL.Query().Get("domain")
			check = func() (eligibility.Report, error) { return rules.Show(r.Context(), sub) }
		}
		rep, err := check()
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, eligibilityOf(rep, admin))
	})
}

// hasCredentials says the request presents a JWT or an API key.
func hasCredentials(r *http.Request) bool {
	if c, err := r.Cookie("jwt"); err == nil && c.Value != "" {
		return true
	}
	return r.Header.Get("x-jwt-token") != "" || r.Header.Get("x-api-key") != ""
}

type grantResponse struct {
	Success bool  `json:"success"`
	ID      int64 `json:"id"`
}

// handleAdminGrantTrial is POST /v1/api/admin/trial-eligibility/grants
// {email | domain, note}: one trial more for an address or a domain the
// rules refuse.
func handleAdminGrantTrial(logger *slog.Logger, rules *eligibility.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Email  string `json:"email"`
			Domain string `json:"domain"`
			Note   string `json:"note"`
		}
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		g, err := rules.Grant(r.Context(), actorOf(r), eligibility.GrantRequest{
			Subject: eligibility.Subject{Email: body.Email, Domain: body.Domain}, Note: body.Note,
		})
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, grantResponse{Success: true, ID: g.ID})
	})
}

// handleAdminDomainLimits is PUT
// /v1/api/admin/trial-eligibility/domains/{domain} {activeLimit,
// trialsLimit, note}: the domain's own limits, 0 for none.
func handleAdminDomainLimits(logger *slog.Logger, rules *eligibility.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ActiveLimit *int   `json:"activeLimit"`
			TrialsLimit *int   `json:"trialsLimit"`
			Note        string `json:"note"`
		}
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		if body.ActiveLimit == nil || body.TrialsLimit == nil {
			respondError(w, r, logger, apperr.InvalidField("activeLimit", "activeLimit and trialsLimit are required (0: no limit)"))
			return
		}
		err := rules.SetDomainLimits(r.Context(), actorOf(r), eligibility.DomainLimitsRequest{
			Domain: r.PathValue("domain"), Active: *body.ActiveLimit, Trials: *body.TrialsLimit, Note: body.Note,
		})
		respondGeneric(w, r, logger, err)
	})
}

// nonEmpty is s, or nil (JSON null) when s is empty.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
