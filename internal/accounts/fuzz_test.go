package accounts

import (
	"regexp"
	"testing"
)

// The hand-written username rule agrees with the contract's expression,
// checked here with the look-arounds spelled out as Go can run them.
func FuzzValidUsername(f *testing.F) {
	for _, seed := range []string{"fred", "_fred", "fr..ed", "abcdefghijklmnopqrstuvwxyz1234", "ｆｒｅｄ", "a-_b", ""} {
		f.Add(seed)
	}
	chars := regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	doubled := regexp.MustCompile(`[_.]{2}`)
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) >= 4 && len(s) <= 30 && chars.MatchString(s) && !doubled.MatchString(s) &&
			s[0] != '_' && s[0] != '.' && s[len(s)-1] != '_' && s[len(s)-1] != '.'
		if got := ValidUsername(s); got != want {
			t.Fatalf("ValidUsername(%q) = %v, the contract's rule says %v", s, got, want)
		}
	})
}
