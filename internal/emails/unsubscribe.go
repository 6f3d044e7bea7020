package emails

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
)

// UnsubscribePath is the API route of the one-click unsubscribe links.
const UnsubscribePath = "/v1/emails/unsubscribe"

// Unsubscribes signs and checks the reminders' one-click unsubscribe links
// (RFC 8058). A link names the user and carries a MAC of their id and
// their address at the time, under a key derived from auth.jwt_secret: it
// needs no login, cannot be forged for another user, and stops working
// when the user's address changes (the new address gets new links).
type Unsubscribes struct {
	key     []byte
	baseURL string
}

// NewUnsubscribes returns the links' signer: secret is auth.jwt_secret,
// baseURL where the people reach the API (email.public_url).
func NewUnsubscribes(secret, baseURL string) *Unsubscribes {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("trialsd unsubscribe links v1"))
	return &Unsubscribes{key: mac.Sum(nil), baseURL: strings.TrimRight(baseURL, "/")}
}

// URL is user userID's link, at their address email.
func (u *Unsubscribes) URL(userID int64, email string) string {
	return u.baseURL + UnsubscribePath + "?token=" + url.QueryEscape(u.token(userID, email))
}

func (u *Unsubscribes) token(userID int64, email string) string {
	id := strconv.FormatInt(userID, 10)
	return id + "." + base64.RawURLEncoding.EncodeToString(u.mac(id, email))
}

func (u *Unsubscribes) mac(id, email string) []byte {
	mac := hmac.New(sha256.New, u.key)
	mac.Write([]byte(id + "\x00" + strings.ToLower(email)))
	return mac.Sum(nil)[:16]
}

// UserOf returns the user a token names, unchecked; false when it is not a
// token at all.
func UserOf(token string) (int64, bool) {
	id, _, ok := strings.Cut(token, ".")
	n, err := strconv.ParseInt(id, 10, 64)
	return n, ok && err == nil && n > 0
}

// Valid says token is user userID's link at address email.
func (u *Unsubscribes) Valid(token string, userID int64, email string) bool {
	id, sig, ok := strings.Cut(token, ".")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	return ok && err == nil && id == strconv.FormatInt(userID, 10) && hmac.Equal(got, u.mac(id, email))
}
