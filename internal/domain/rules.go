package domain

import (
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
)

// MaxUTMParams caps utmParams, as the contract does, on every path that
// takes them.
const MaxUTMParams = 50

// MaxFieldLength bounds the free-text fields of a request; NotesLength
// gives an admin's notes more room.
const (
	MaxFieldLength = 1000
	MaxNotesLength = 10000
)

// MLModelsInProduction are the accepted answers of userHasMLModelsInProduction.
var MLModelsInProduction = []string{"yes", "no", "no, but we will soon"}

// CheckUTMParams refuses more than MaxUTMParams utmParams entries.
func CheckUTMParams(n int) error {
	if n > MaxUTMParams {
		return apperr.InvalidField("utmParams", "utmParams may hold at most %d entries", MaxUTMParams)
	}
	return nil
}

// CheckEmail is the one e-mail rule: a single address, as RFC 5322 writes
// it, with nothing around it (no display name, no spaces). field names the
// request field in the error.
func CheckEmail(field, email string) error {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return apperr.InvalidField(field, "%s is not a valid e-mail address", field)
	}
	return nil
}

// EmailDomain is the lower-cased domain of a valid address.
func EmailDomain(email string) string {
	return strings.ToLower(email[strings.LastIndex(email, "@")+1:])
}

// CheckLength refuses a value longer than max bytes, naming field.
func CheckLength(field string, value *string, max int) error {
	if value != nil && len(*value) > max {
		return apperr.InvalidField(field, "%s may be at most %d characters", field, max)
	}
	return nil
}

// Validate checks the details' lengths, the utmParams cap and the
// enumerated answers, without the database.
func (d TrialDetails) Validate() error {
	fields := []struct {
		name  string
		value *string
	}{
		{"useCase", d.UseCase}, {"companyName", d.CompanyName}, {"companySize", d.CompanySize},
		{"country", d.Country}, {"stateOrProvince", d.StateOrProvince}, {"jobTitle", d.JobTitle},
	}
	for _, f := range fields {
		if err := CheckLength(f.name, f.value, MaxFieldLength); err != nil {
			return err
		}
	}
	if err := CheckUTMParams(len(d.UTMParams)); err != nil {
		return err
	}
	if v := d.UserHasMLModelsInProduction; v != nil && !slices.Contains(MLModelsInProduction, *v) {
		return apperr.InvalidField("userHasMLModelsInProduction", "userHasMLModelsInProduction must be one of %q", MLModelsInProduction)
	}
	return nil
}

// The dates trialsd takes lie in [MinDate, MaxDate). Every date it derives
// from one (a trial's expiry up to ten years after its start, the grace
// period and the purge after that, a test clock's advances) then keeps the
// four-digit year that RFC 3339, River's job pages and the JSON logs need:
// a test clock at 9999-12-31 would put its trial's expiry in year 10000.
var (
	MinDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxDate = time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckDate refuses a date outside [MinDate, MaxDate), naming field.
func CheckDate(field string, t time.Time) error {
	if t.Before(MinDate) || !t.Before(MaxDate) {
		return apperr.InvalidField(field, "%s must be from 1970-01-01 up to 9000-01-01", field)
	}
	return nil
}
