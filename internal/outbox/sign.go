package outbox

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trialsd/trialsd/internal/store"
)

// The Standard Webhooks headers of a delivery.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// NewSecret returns a new endpoint secret in the Standard Webhooks form,
// whsec_ and the base64 of 32 random bytes, which receivers' libraries take
// as it is.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("drawing a webhook secret: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// signature is the webhook-signature header of body sent as message id at
// at: one v1 signature per secret, space-separated, each made by the
// Standard Webhooks library, so what receivers verify with is what signed.
func signature(id string, at time.Time, body []byte, secrets []string) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for i, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err == nil {
			var sig string
			sig, err = wh.Sign(id, at, body)
			sigs = append(sigs, sig)
		}
		if err != nil {
			// Never the secret itself: errors end up in logs.
			return "", fmt.Errorf("signing with webhook secret %d of %d: not a whsec_ base64 secret", i+1, len(secrets))
		}
	}
	return strings.Join(sigs, " "), nil
}

// signingSecrets are the secrets that sign a delivery to e at now: its own
// and, while the rotation overlap lasts, the one it rotated out. A config
// endpoint signs with webhooks.secret.
func signingSecrets(e store.WebhookEndpoint, configSecret string, now time.Time) []string {
	if e.Secret == nil {
		if configSecret == "" {
			return nil
		}
		return []string{configSecret}
	}
	secrets := []string{*e.Secret}
	if e.PreviousSecret != nil && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		secrets = append(secrets, *e.PreviousSecret)
	}
	return secrets
}
