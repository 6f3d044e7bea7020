package httpapi

import (
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/ratelimit"
)

// Limits are the rate limits of the public and login endpoints, one
// limiter per purpose: keys of one purpose can never use up another's
// budget (a login named "activate:2" once spent user 2's activations).
type Limits struct {
	// LoginPerClient limits login attempts per client (clientKey).
	LoginPerClient *ratelimit.Limiter
	// LoginPerAccount limits login attempts per account, however the login
	// names it (username or e-mail, in any case), from clients the
	// account has not logged in from (Known): against guessing one
	// password from many addresses. A client that logged in to the
	// account with its password lately is not held by it, so no one can
	// lock an admin out of the clients they use by failing on purpose.
	LoginPerAccount *ratelimit.Limiter
	// Known are the clients each account logged in from lately.
	Known *KnownClients
	// Signup limits public sign-ups per client address.
	Signup *ratelimit.Limiter
	// Activation limits attempts at an activation code per user.
	Activation *ratelimit.Limiter
	// ActivationCodes limits requests for a new activation code per user.
	ActivationCodes *ratelimit.Limiter
	// ExtensionPerUser and ExtensionPerOrganization limit trial extension
	// requests, each of which becomes an event and a webhook delivery.
	ExtensionPerUser, ExtensionPerOrganization *ratelimit.Limiter
	// Preflight limits anonymous eligibility pre-flights per client
	// address (eligibility.preflight_rate_limit): a sign-up form asks as
	// its user types, a scraper asks for a whole list.
	Preflight *ratelimit.Limiter
}

// NewLimits returns a limiter of rate for each purpose, and of preflight
// for the eligibility pre-flight.
func NewLimits(rate, preflight config.RateLimit, clk clock.Clock) Limits {
	return Limits{
		Preflight:      ratelimit.New(preflight, clk),
		LoginPerClient: ratelimit.New(rate, clk), LoginPerAccount: ratelimit.New(rate, clk),
		Signup: ratelimit.New(rate, clk), Activation: ratelimit.New(rate, clk), ActivationCodes: ratelimit.New(rate, clk),
		ExtensionPerUser: ratelimit.New(rate, clk), ExtensionPerOrganization: ratelimit.New(rate, clk),
		Known: NewKnownClients(clk),
	}
}

// errRateLimited is answered with 429 and Retry-After.
type errRateLimited struct{ retryAfter time.Duration }

func (e errRateLimited) Error() string { return "Too many requests, retry later." }

// allow takes one event of key from limiter, or returns errRateLimited.
func allow(limiter *ratelimit.Limiter, key string) error {
	if ok, retry := limiter.Allow(key); !ok {
		return errRateLimited{retryAfter: retry}
	}
	return nil
}

func retryAfterHeader(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

type loginResponse struct {
	Success bool   `json:"success"`
	Token   string `json:"token"`
}

// handleLogin is getJWT: POST /v1/api-login {username, password}. The
// username may also be the e-mail address. It answers the token and sets it
// as the jwt cookie.
func handleLogin(logger *slog.Logger, gate loginGate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Username *string `json:"username"`
			Password *string `json:"password"`
		}
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		if body.Username == nil || *body.Username == "" {
			respondError(w, r, logger, apperr.InvalidField("username", "username is required"))
			return
		}
		if body.Password == nil {
			respondError(w, r, logger, apperr.InvalidField("password", "password is required"))
			return
		}
		u, token, err := gate.login(r, *body.Username, *body.Password)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		gate.setCookie(w, r, token)
		logger.InfoContext(r.Context(), "user logged in", "user_id", u.ID)
		encode(w, http.StatusOK, loginResponse{Success: true, Token: token})
	})
}

// loginGate is the one way in with a password, for /v1/api-login and the
// console's login form alike: the rate limits per client and per account,
// the password check, and the jwt cookie.
type loginGate struct {
	tokens  *accounts.Tokens
	limits  Limits
	trusted []netip.Prefix
}

// login checks a username (or e-mail address) and password under the rate
// limits, and returns the user with a new JWT.
func (g loginGate) login(r *http.Request, username, password string) (domain.User, string, error) {
	client := clientKey(r, g.trusted)
	if err := allow(g.limits.LoginPerClient, client); err != nil {
		return domain.User{}, "", err
	}
	attempt, err := g.tokens.FindLogin(r.Context(), username)
	if err != nil {
		return domain.User{}, "", err
	}
	account := attempt.AccountKey()
	known := g.limits.Known.has(account, client)
	if !known {
		if err := allow(g.limits.LoginPerAccount, account); err != nil {
			return domain.User{}, "", err
		}
	}
	u, token, err := g.tokens.Check(r.Context(), attempt, password)
	if err == nil && !known {
		g.limits.Known.add(account, client)
	}
	return u, token, err
}

// jwtCookie is the cookie a login sets: the browser sends it back, scripts
// cannot read it, other sites' requests carry it only on top-level GETs,
// and over TLS it never travels in the clear.
const jwtCookie = "jwt"

// setCookie sets the jwt cookie to token for the token's lifetime.
func (g loginGate) setCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: jwtCookie, Value: token, Path: "/", MaxAge: int(g.tokens.TTL().Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}

// clearCookie removes the jwt cookie: a logout.
func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: jwtCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}
