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
	"github.com/trialsd/trialsd/internal/lifecycle"
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

// passwordHasher hashes a sign-up's password: *signup.Service.
type passwordHasher interface {
	HashPassword(ctx context.Context, password string) (string, error)
}

// signupChecks are what a sign-up's checks need besides signupFields.
type signupChecks struct {
	name, email   *string
	policy        signup.Policy
	utm           int
	origin, query *string
	hasher        passwordHasher
}

// checkSignup makes the checks every public sign-up makes before writing,
// cheapest first: the sign-up's rules (signup.Form.Validate), the
// redirect, then Turnstile, which costs a call to Cloudflare. Only a
// sign-up that passed them all has its password hashed (returned), in one
// of the process's bounded password slots: a flood of sign-ups with bad
// tokens costs neither memory nor cores.
func checkSignup(r *http.Request, f signupFields, c signupChecks, v *turnstile.Verifier, cfg *config.Config) (*string, error) {
	form := signup.Form{
		Name: c.name, Username: f.Username, Email: c.email, Password: f.Password,
		PrivacyPolicy: f.PrivacyPolicy, UTMParams: c.utm,
	}
	if err := form.Validate(c.policy); err != nil {
		return nil, err
	}
	if _, err := redirectURL(cfg.HTTP.RedirectOrigins, c.origin, c.query, ""); err != nil {
		return nil, err
	}
	if err := verifyHuman(r, v, f.TurnstileResponse, cfg.HTTP.TrustedProxies); err != nil {
		return nil, err
	}
	if !form.HasPassword() {
		return nil, nil
	}
	h, err := c.hasher.HashPassword(r.Context(), *f.Password)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

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
			if err := allow(limit.Signup, clientAddr(r, cfg.HTTP.TrustedProxies)); err != nil {
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
			if err := lifecycle.ValidateStart(req); err != nil {
				return err
			}
			hash, err := checkSignup(r, body.signupFields, signupChecks{
				name: body.Name, email: body.Email, utm: len(body.UTMParams),
				policy: signup.Policy{BusinessOnly: true, FreeEmailDomains: cfg.Signup.FreeEmailDomains},
				origin: body.RedirectURLOrigin, query: body.RedirectURLQueryParams, hasher: svc,
			}, v, cfg)
			if err != nil {
				return err
			}
			started, err := svc.StartEnterpriseTrial(r.Context(), signup.NewUser{
				Username: *body.Username, Email: *body.Email, Name: *body.Name,
				PasswordHash: hash, JobTitle: body.JobTitle, CompanyName: body.CompanyName,
			}, req, causeOf(r))
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
			if err := allow(limit.Signup, clientAddr(r, cfg.HTTP.TrustedProxies)); err != nil {
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
			if body.ProjectName != nil && len(*body.ProjectName) > 255 {
				return apperr.InvalidField("projectName", "projectName may be at most 255 characters")
			}
			hash, err := checkSignup(r, body.signupFields, signupChecks{
				name: body.Name, email: body.Email, utm: len(body.UTMParams),
				origin: body.RedirectURLOrigin, query: body.RedirectURLQueryParams, hasher: svc,
			}, v, cfg)
			if err != nil {
				return err
			}
			u := signup.ProUser{NewUser: signup.NewUser{
				Username: *body.Username, Email: *body.Email, Name: *body.Name, PasswordHash: hash,
				JobTitle: body.JobTitle, CompanyName: body.CompanyName,
			}}
			if body.ProjectName != nil {
				u.ProjectName = strings.TrimSpace(*body.ProjectName)
			}
			created, err := svc.CreateProUser(r.Context(), u)
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
