package accounts

import "testing"

func TestValidUsername(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		want bool
	}{
		{"fred", true},
		{"janjongboom", true},
		{"Fred.Flintstone", true},
		{"fred_flintstone", true},
		{"fred-flintstone", true},
		{"-fred", true},
		{"fred-", true},
		{"f--d", true},
		{"a.b_c", true},
		{"a-_b", true},
		{"a_-.b", true},
		{"1234", true},
		{"abcdefghijklmnopqrstuvwxyz1234", true},   // 30
		{"abcdefghijklmnopqrstuvwxyz12345", false}, // 31
		{"abc", false},
		{"", false},
		{"_fred", false},
		{".fred", false},
		{"fred_", false},
		{"fred.", false},
		{"fr__ed", false},
		{"fr..ed", false},
		{"fr._ed", false},
		{"fr_.ed", false},
		{"fr ed", false},
		{"fred@home", false},
		{"frëd", false},
		{"fréd", false},
		{"fred\n", false},
		{"fred'; DROP TABLE users;--", false},
		{"раураl", false}, // Cyrillic look-alikes of "paypal"
		{"ｆｒｅｄ", false},   // full-width letters
		{"f.r.e.d", true},
		{"____", false},
		{"----", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ValidUsername(tt.name); got != tt.want {
				t.Fatalf("ValidUsername(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}
