package turnstile

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/config"
)

// fakeSiteverify is a real HTTP server speaking Cloudflare's siteverify
// protocol: it accepts the token "good" for the secret "s3cret".
func fakeSiteverify(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.PostForm.Get("secret") != "s3cret":
			w.Write([]byte(`{"success":false,"error-codes":["invalid-input-secret"]}`))
		case r.PostForm.Get("response") == "good" && r.PostForm.Get("remoteip") == "203.0.113.9":
			w.Write([]byte(`{"success":true}`))
		case r.PostForm.Get("response") == "boom":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.Write([]byte(`{"success":false,"error-codes":["invalid-input-response"]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestVerify(t *testing.T) {
	t.Parallel()
	srv := fakeSiteverify(t)
	client := &http.Client{Timeout: 2 * time.Second}
	v := New(client, config.Turnstile{Enabled: true, Secret: "s3cret", VerifyURL: srv.URL})
	ctx := context.Background()

	tests := []struct {
		name, token, ip string
		wantRejected    bool
		wantErr         bool
	}{
		{"good token", "good", "203.0.113.9", false, false},
		{"bad token", "forged", "203.0.113.9", true, true},
		{"empty token", "", "203.0.113.9", true, true},
		{"siteverify down", "boom", "203.0.113.9", false, true},
	}
	for _, tt := range tests {
		err := v.Verify(ctx, tt.token, tt.ip)
		if (err != nil) != tt.wantErr || errors.Is(err, ErrRejected) != tt.wantRejected {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	wrongSecret := New(client, config.Turnstile{Enabled: true, Secret: "other", VerifyURL: srv.URL})
	if err := wrongSecret.Verify(ctx, "good", "203.0.113.9"); !errors.Is(err, ErrRejected) {
		t.Errorf("wrong secret: %v", err)
	}
	disabled := New(client, config.Turnstile{Enabled: false})
	if err := disabled.Verify(ctx, "", ""); err != nil {
		t.Errorf("disabled verifier: %v", err)
	}
}
