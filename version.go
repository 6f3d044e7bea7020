// Package trialsd is the repository's root: it holds what belongs to the
// whole of it rather than to one package, its release version.
package trialsd

import (
	_ "embed"
	"strings"
)

// versionFile is VERSION, the one place the release is written; the
// newest release in CHANGELOG.md names the same (a test holds the two
// together).
//
//go:embed VERSION
var versionFile string

// Version is the release this source is, a semantic version such as
// 0.9.0, the same in every build of it (make, go build, Docker).
func Version() string { return strings.TrimSpace(versionFile) }
