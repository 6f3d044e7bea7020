package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/trialsd/trialsd"
)

// The binary, built by make build, says its release, from the VERSION
// file, and the commit of the checkout it was built in.
func TestVersionNamesReleaseAndCommit(t *testing.T) {
	for _, tool := range []string{"git", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if err := exec.Command("git", "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not in a Git checkout: there is no commit to name")
	}
	bin := filepath.Join(t.TempDir(), "trialsd")
	if out, err := exec.Command("make", "-s", "-C", "../..", "build", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("trialsd version: %v", err)
	}
	want := regexp.MustCompile(`^trialsd ` + regexp.QuoteMeta(trialsd.Version()) + ` \(commit [0-9a-f]{7,}(-dirty)?\)\n$`)
	if !want.Match(out) {
		t.Fatalf("trialsd version printed %q, want %s", out, want)
	}
}
