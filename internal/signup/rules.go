package signup

import (
	"slices"
	"strings"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
)

// ReasonFreeEmail names the refusal of an enterprise sign-up for a
// free-mail address, which the sign-up metrics count apart.
const ReasonFreeEmail = "FreeEmail"

// Form is what a public sign-up asks of its user, as decoded: a nil field
// was absent.
type Form struct {
	Name, Username, Email *string
	Password              *string
	PrivacyPolicy         *bool
	// UTMParams counts the request's utmParams entries.
	UTMParams int
}

// Policy is what differs between the sign-ups' rules.
type Policy struct {
	// BusinessOnly refuses an address at one of FreeEmailDomains: the
	// enterprise trial is for companies.
	BusinessOnly     bool
	FreeEmailDomains []string
}

// Validate checks the form against the sign-up rules, cheapest first, and
// without the database: the required fields, the username rule, the
// e-mail rule (and, BusinessOnly, the free-mail refusal), the privacy
// policy, the password rule and the utmParams cap.
func (f Form) Validate(p Policy) error {
	required := []struct {
		name  string
		value *string
	}{{"name", f.Name}, {"username", f.Username}, {"email", f.Email}}
	for _, r := range required {
		if r.value == nil || strings.TrimSpace(*r.value) == "" {
			return apperr.InvalidField(r.name, "%s is required", r.name)
		}
	}
	if err := accounts.CheckUsername(*f.Username); err != nil {
		return err
	}
	if err := domain.CheckEmail("email", *f.Email); err != nil {
		return err
	}
	if d := domain.EmailDomain(*f.Email); p.BusinessOnly && slices.Contains(p.FreeEmailDomains, d) {
		e := apperr.InvalidField("email", "Please use your business e-mail address; %s addresses are not accepted for enterprise trials", d)
		e.Reason = ReasonFreeEmail
		return e
	}
	if f.PrivacyPolicy == nil || !*f.PrivacyPolicy {
		return apperr.InvalidField("privacyPolicy", "privacyPolicy must be accepted")
	}
	if f.HasPassword() {
		if err := accounts.CheckPasswordRule(*f.Password); err != nil {
			return err
		}
	}
	return domain.CheckUTMParams(f.UTMParams)
}

// HasPassword tells whether the sign-up sets a password.
func (f Form) HasPassword() bool { return f.Password != nil && *f.Password != "" }
