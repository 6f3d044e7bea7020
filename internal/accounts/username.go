package accounts

import "github.com/trialsd/trialsd/internal/apperr"

// ValidUsername reports whether s satisfies the contract's username rule,
// ^(?=.{4,30}$)(?![_.])(?!.*[_.]{2})[a-zA-Z0-9._-]+(?<![_.])$, written out
// because Go's regexp has no look-arounds: 4 to 30 characters of letters,
// digits, '.', '_' and '-'; no '.' or '_' first or last; never two of
// '.' and '_' in a row.
func ValidUsername(s string) bool {
	if len(s) < 4 || len(s) > 30 {
		return false
	}
	prevDotOrUnderscore := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		dotOrUnderscore := c == '.' || c == '_'
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		case dotOrUnderscore:
			if i == 0 || i == len(s)-1 || prevDotOrUnderscore {
				return false
			}
		default:
			return false
		}
		prevDotOrUnderscore = dotOrUnderscore
	}
	return true
}

// CheckUsername refuses a username that breaks ValidUsername's rule, with
// the one message every path that takes a username gives.
func CheckUsername(s string) error {
	if !ValidUsername(s) {
		return apperr.InvalidField("username", "username must be 4 to 30 letters, digits, '.', '_' or '-', not starting or ending with '.' or '_', without two of them in a row")
	}
	return nil
}
