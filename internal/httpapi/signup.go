package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/signup"
	"github.com/trialsd/trialsd/internal/turnstile"
)

// signupOutcome classifies a sign-up's result for trialsd_signups_total.
func signupOutcome(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.As(err, new(errRateLimited)):
		return "rate_limited"
	}
	var e *apperr.Error
	switch {
	case errors.As(err, &e) && e.Reason == signup.ReasonFreeEmail:
		return "rejected_email"
	case e != nil && e.Field == "turnstileResponse":
		return "turnstile_failed"
	}
	switch apperr.CodeOf(err) {
	case apperr.Invalid:
		return "invalid"
	case apperr.Conflict:
		return "conflict"
	case apperr.Unavailable:
		return "turnstile_unavailable"
	}
	return "error"
}

// signupFields are the fields both public sign-ups add to name and e-mail
// (which StartEnterpriseTrialRequest already carries, so they are not
// repeated: encoding/json ignores a name two embedded structs both declare).
type signupFields struct {
	Username          *string `json:"username"`
	Password          *string `json:"password"`
	PrivacyPolicy     *bool   `json:"privacyPolicy"`
	TurnstileResponse *string `json:"turnstileResponse"`
	JobTitle          *string `json:"jobTitle"`
}

// form is the sign-up's form as the signup package checks it.
func (f signupFields) form(name, email *string, utm int) signup.Form {
	return signup.Form{
		Name: name, Username: f.Username, Email: email, Password: f.Password,
		PrivacyPolicy: f.PrivacyPolicy, UTMParams: utm,
	}
}

// edgeChecks are a sign-up's checks that need the request, for the signup
// service to run once the sign-up's rules passed: the redirect, then
// Turnstile, which costs a call to Cloudflare.
func edgeChecks(r *http.Request, v *turnstile.Verifier, cfg *config.Config, redirect redirectFields, token *string) signup.EdgeCheck {
	return func(ctx context.Context) error {
		if _, err := redirectURL(cfg.HTTP.RedirectOrigins, redirect.origin, redirect.query, ""); err != nil {
			return err
		}
		return verifyHuman(r.WithContext(ctx), v, token, cfg.HTTP.TrustedProxies)
	}
}

// redirectFields are a sign-up's redirectUrlOrigin and redirectUrlQueryParams.
type redirectFields struct{ origin, query *string }

// verifyHuman checks the Turnstile token: a rejected token is the client's
// fault (400), an unreachable Cloudflare is not (503).
func verifyHuman(r *http.Request, v *turnstile.Verifier, token *string, trusted []netip.Prefix) error {
	t := ""
	if token != nil {
		t = *token
	}
	err := v.Verify(r.Context(), t, clientAddr(r, trusted))
	if errors.Is(err, turnstile.ErrRejected) {
		return apperr.InvalidField("turnstileResponse", "Human verification failed, please try again")
	}
	if err != nil {
		return fmt.Errorf("%w: %w", apperr.Errorf(apperr.Unavailable, "Human verification is unavailable, please retry later"), err)
	}
	return nil
}

type signupResponse struct {
	Success     bool   `json:"success"`
	ID          int64  `json:"id"`
	UserID      int64  `json:"userId,omitempty"`
	RedirectURL string `json:"redirectUrl"`
}

// handleCreateEnterpriseTrialUser is createEnterpriseTrialUser: POST
// /v1/api-user-create-enterprise-trial. Rate limited per client, Turnstile
// verified before anything is written, then the user, the trial
// organization and the trial in one transaction.
func handleCreateEnterpriseTrialUser(logger *slog.Logger, obs Observer, svc *signup.Service, v *turnstile.Verifier, limit Limits, cfg *config.Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := func() error {
			if err := allow(limit.Signup, clientKey(r, cfg.HTTP.TrustedProxies)); err != nil {
				return err
			}
			var body struct {
				startTrialRequest
				signupFields
			}
			if err := decode(r, &body); err != nil {
				return err
			}
			req, err := body.startTrialRequest.toDomain()
			if err != nil {
				return err
			}
			req.Details.JobTitle = body.JobTitle
			started, err := svc.StartEnterpriseTrial(r.Context(), signup.EnterpriseSignup{
				Form:  body.signupFields.form(body.Name, body.Email, len(body.UTMParams)),
				Trial: req, JobTitle: body.JobTitle, CompanyName: body.CompanyName,
				Edge: edgeChecks(r, v, cfg, redirectFields{body.RedirectURLOrigin, body.RedirectURLQueryParams}, body.TurnstileResponse),
			}, causeOf(r))
			if err != nil {
				return err
			}
			redirect, _ := redirectURL(cfg.HTTP.RedirectOrigins, body.RedirectURLOrigin, body.RedirectURLQueryParams, organizationPath(started.OrganizationID))
			encode(w, http.StatusOK, signupResponse{Success: true, ID: started.TrialID, UserID: started.UserID, RedirectURL: redirect})
			return nil
		}()
		obs.Signup("enterprise_trial", signupOutcome(err))
		if err != nil {
			respondError(w, r, logger, err)
		}
	})
}

// handleCreateProUser is createProTierUser: POST /v1/api-create-pro-user. The
// user starts on the Professional plan awaiting payment, with a first
// project, and gets an activation code by e-mail. No business-e-mail rule.
func handleCreateProUser(logger *slog.Logger, obs Observer, svc *signup.Service, v *turnstile.Verifier, limit Limits, cfg *config.Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := func() error {
			if err := allow(limit.Signup, clientKey(r, cfg.HTTP.TrustedProxies)); err != nil {
				return err
			}
			var body struct {
				signupFields
				Name                   *string           `json:"name"`
				Email                  *string           `json:"email"`
				ProjectName            *string           `json:"projectName"`
				CompanyName            *string           `json:"companyName"`
				ActivationToken        *string           `json:"activationToken"`
				IdentityProvider       *string           `json:"identityProvider"`
				SessionID              *string           `json:"sessionId"`
				UTMParams              []json.RawMessage `json:"utmParams"`
				RedirectURLOrigin      *string           `json:"redirectUrlOrigin"`
				RedirectURLQueryParams *string           `json:"redirectUrlQueryParams"`
			}
			if err := decode(r, &body); err != nil {
				return err
			}
			created, err := svc.CreateProUser(r.Context(), signup.ProSignup{
				Form:        body.signupFields.form(body.Name, body.Email, len(body.UTMParams)),
				ProjectName: body.ProjectName, JobTitle: body.JobTitle, CompanyName: body.CompanyName,
				Edge: edgeChecks(r, v, cfg, redirectFields{body.RedirectURLOrigin, body.RedirectURLQueryParams}, body.TurnstileResponse),
			})
			if err != nil {
				return err
			}
			redirect, _ := redirectURL(cfg.HTTP.RedirectOrigins, body.RedirectURLOrigin, body.RedirectURLQueryParams, projectPath(created.ProjectID))
			encode(w, http.StatusOK, signupResponse{Success: true, ID: created.UserID, RedirectURL: redirect})
			return nil
		}()
		obs.Signup("professional", signupOutcome(err))
		if err != nil {
			respondError(w, r, logger, err)
		}
	})
}

// handleActivate is activateCurrentUser: POST /v1/api/user/activate {code}.
// Attempts are limited per account, as six digits could be guessed.
func handleActivate(logger *slog.Logger, svc *signup.Service, limit Limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := caller(r.Context())
		if err := allow(limit.Activation, strconv.FormatInt(u.ID, 10)); err != nil {
			respondError(w, r, logger, err)
			return
		}
		var body struct {
			Code *string `json:"code"`
		}
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		if body.Code == nil || *body.Code == "" {
			respondError(w, r, logger, apperr.InvalidField("code", "code is required"))
			return
		}
		respondGeneric(w, r, logger, svc.Activate(r.Context(), u.ID, strings.TrimSpace(*body.Code)))
	})
}

// handleRequestActivation is requestActivationCodeCurrentUser: a new code by
// e-mail, limited per account.
func handleRequestActivation(logger *slog.Logger, svc *signup.Service, limit Limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := caller(r.Context())
		if err := allow(limit.ActivationCodes, strconv.FormatInt(u.ID, 10)); err != nil {
			respondError(w, r, logger, err)
			return
		}
		respondGeneric(w, r, logger, svc.RequestActivation(r.Context(), u.ID))
	})
}
