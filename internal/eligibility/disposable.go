package eligibility

import (
	_ "embed"
	"strings"
)

// disposableList is the disposable-email-domains project's blocklist
// (https://github.com/disposable-email-domains/disposable-email-domains,
// disposable_email_blocklist.conf at commit a645893, 2026-08-21, CC0),
// vendored as it is: one domain a line. The daemon never downloads it; to
// update it, replace the file and note the new commit and date here.
//
//go:embed disposable_email_blocklist.conf
var disposableList string

// disposableDomains are the vendored list with add added and remove taken
// out.
func disposableDomains(add, remove []string) map[string]bool {
	set := make(map[string]bool, 8500)
	for line := range strings.Lines(disposableList) {
		if d := strings.TrimSpace(line); d != "" && !strings.HasPrefix(d, "#") {
			set[strings.ToLower(d)] = true
		}
	}
	for _, d := range add {
		set[d] = true
	}
	for _, d := range remove {
		delete(set, d)
	}
	return set
}

// isListed says host or one of its parent domains is in set: a subdomain
// of a disposable service delivers to it too.
func isListed(set map[string]bool, host string) bool {
	for d := host; d != ""; {
		if set[d] {
			return true
		}
		_, parent, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(parent, ".") {
			return false
		}
		d = parent
	}
	return false
}
