// Package migrations embeds the application's SQL schema so the binary can
// migrate a database without any file beside it. River's own tables are not
// here: they come from rivermigrate, applied by the same command.
package migrations

import "embed"

// FS holds the goose migrations, numbered in the order they apply.
//
//go:embed *.sql
var FS embed.FS
