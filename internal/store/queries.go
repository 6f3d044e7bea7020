package store

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

// queryFiles are the store's queries, the source sqlc generates
// internal/dbsqlc from.
//
//go:embed queries/*.sql
var queryFiles embed.FS

// Query returns the SQL of the query named name in internal/store/queries,
// as sqlc reads it: comments dropped, sqlc's @name parameters in place, no
// final semicolon. It is for what runs the store's own statements outside
// Go, such as the bench's pgbench script, so that they run what the store
// runs rather than a copy of it.
func Query(name string) (string, error) {
	files, err := fs.Glob(queryFiles, "queries/*.sql")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		src, err := queryFiles.ReadFile(f)
		if err != nil {
			return "", err
		}
		if sql, ok := queryIn(string(src), name); ok {
			return sql, nil
		}
	}
	return "", fmt.Errorf("no query %q in internal/store/queries", name)
}

// queryIn finds the query named name in one file's source.
func queryIn(src, name string) (string, bool) {
	var sql []string
	found := false
	for line := range strings.Lines(src) {
		trimmed := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(trimmed, "-- name: "); ok {
			if found {
				break
			}
			found = strings.Fields(rest)[0] == name
			continue
		}
		if found && trimmed != "" && !strings.HasPrefix(trimmed, "--") {
			sql = append(sql, strings.TrimRight(line, "\n"))
		}
	}
	return strings.TrimSuffix(strings.TrimSpace(strings.Join(sql, "\n")), ";"), found
}
