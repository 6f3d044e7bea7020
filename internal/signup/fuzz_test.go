package signup_test

import (
	"errors"
	"net/mail"
	"slices"
	"strings"
	"testing"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/signup"
)

// Sign-up fields of any content are accepted or refused as a 400 naming a
// field, never a panic; an accepted e-mail is one address exactly as sent,
// and, for enterprise trials, never at a free-mail domain in any case.
func FuzzFormValidate(f *testing.F) {
	for _, seed := range []struct{ name, username, email string }{
		{"Ada", "ada_l", "ada@acme.example"}, {"Ada", "ada_l", "Ada <ada@acme.example>"},
		{"Ada", "ada_l", "ada@GMAIL.com"}, {" ", "ab", "x"}, {"Ada", "ada.l", "ada@"},
		{"Ada", "ada-l", "\"a b\"@acme.example"}, {"Ada", "ada_l", "ada@acme.example\x00"},
		{"Ada", "аda_l", "ada@acmе.example"}, // Cyrillic а and е
	} {
		f.Add(seed.name, seed.username, seed.email, true)
	}
	free := []string{"gmail.com", "outlook.com"}
	yes := true
	f.Fuzz(func(t *testing.T, name, username, email string, businessOnly bool) {
		form := signup.Form{Name: &name, Username: &username, Email: &email, PrivacyPolicy: &yes}
		err := form.Validate(signup.Policy{BusinessOnly: businessOnly, FreeEmailDomains: free})
		if err != nil {
			var appErr *apperr.Error
			if !errors.As(err, &appErr) || appErr.Code != apperr.Invalid || appErr.Field == "" {
				t.Fatalf("validate(%q, %q, %q) = %v: not a 400 naming a field", name, username, email, err)
			}
			return
		}
		addr, perr := mail.ParseAddress(email)
		if perr != nil || addr.Address != email {
			t.Fatalf("accepted e-mail %q is not one bare address", email)
		}
		domain := strings.ToLower(email[strings.LastIndex(email, "@")+1:])
		if businessOnly && slices.Contains(free, domain) {
			t.Fatalf("accepted free-mail address %q for an enterprise trial", email)
		}
	})
}
