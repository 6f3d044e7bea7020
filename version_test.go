package trialsd_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/trialsd/trialsd"
)

// VERSION is a semantic version, and the newest release CHANGELOG.md
// describes: a release bumped in one and not the other fails here.
func TestVersionIsTheChangelogsNewestRelease(t *testing.T) {
	t.Parallel()
	v := trialsd.Version()
	if !regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`).MatchString(v) {
		t.Fatalf("VERSION is %q, want a semantic version such as 0.9.0", v)
	}
	changelog, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	newest := regexp.MustCompile(`(?m)^## \[([0-9][^\]]*)\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$`).FindSubmatch(changelog)
	if newest == nil {
		t.Fatal("CHANGELOG.md has no release heading such as ## [0.9.0] - 2026-12-03")
	}
	if string(newest[1]) != v {
		t.Fatalf("CHANGELOG.md's newest release is %s, VERSION says %s: describe the release, or bump VERSION", newest[1], v)
	}
}
