package signature

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec_test")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	good := Sign(secret, now, body)

	tests := []struct {
		name    string
		header  string
		body    []byte
		secret  []byte
		at      time.Time
		wantErr error
	}{
		{"valid", good, body, secret, now, nil},
		{"valid within tolerance", good, body, secret, now.Add(4 * time.Minute), nil},
		{"rotated secrets: one of several v1", "t=1800000000,v1=00ff," + strings.Split(good, ",")[1], body, secret, now, nil},
		{"body changed", good, []byte(`{"id":"evt_2"}`), secret, now, ErrMismatch},
		{"other secret", good, body, []byte("other"), now, ErrMismatch},
		{"too old", good, body, secret, now.Add(6 * time.Minute), ErrExpired},
		{"from the future", good, body, secret, now.Add(-6 * time.Minute), ErrExpired},
		{"timestamp swapped", strings.Replace(good, "t=1800000000", "t=1800000001", 1), body, secret, now, ErrMismatch},
		{"empty", "", body, secret, now, ErrMalformed},
		{"no v1", "t=1800000000", body, secret, now, ErrMalformed},
		{"bad hex", "t=1800000000,v1=zz", body, secret, now, ErrMalformed},
		{"no t", strings.Split(good, ",")[1], body, secret, now, ErrMalformed},
		{"garbage", "hello", body, secret, now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tt.secret, tt.header, tt.body, tt.at, 5*time.Minute)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	secret, now := []byte("k"), time.Unix(1_800_000_000, 0)
	f.Add(Sign(secret, now, []byte("{}")), []byte("{}"))
	f.Add("t=1800000000,v1=00", []byte("{}"))
	f.Add("t=,v1=", []byte(""))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		// Never panics, and accepts only a header carrying the MAC of its
		// own timestamp and this body.
		if Verify(secret, header, body, now, 5*time.Minute) != nil {
			return
		}
		for _, part := range strings.Split(header, ",") {
			if ts, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
				want := "v1=" + hex.EncodeToString(mac(secret, ts, body))
				if !strings.Contains(strings.ToLower(header), want) {
					t.Fatalf("accepted %q without %s", header, want)
				}
			}
		}
	})
}
