package enterprise

import (
	"encoding/json"
	"testing"

	"github.com/trialsd/trialsd/internal/apperr"
)

// Any decoded body validates or fails with a 400 naming a field; the
// canonical form used for the idempotency hash is stable.
func FuzzRequestValidate(f *testing.F) {
	f.Add(`{"email":"a@b.example","idempotencyKey":"k","additionalAdmins":[]}`)
	f.Add(`{"email":"","idempotencyKey":"","additionalAdmins":null,"thirdPartyIdentifier":[{"id":"","label":""}]}`)
	f.Add(`{"additionalAdmins":["00000000000000000000000000000000"]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var r Request
		if json.Unmarshal([]byte(body), &r) != nil {
			return
		}
		if err := r.validate(); err != nil {
			var e *apperr.Error
			if e, _ = err.(*apperr.Error); e == nil || e.Code != apperr.Invalid || e.Field == "" {
				t.Fatalf("validate: %v is not a 400 naming a field", err)
			}
			return
		}
		a, _ := json.Marshal(r)
		var again Request
		if err := json.Unmarshal(a, &again); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatalf("canonical form not stable: %s vs %s", a, b)
		}
	})
}
