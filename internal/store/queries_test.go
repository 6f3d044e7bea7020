package store_test

import (
	"strings"
	"testing"

	"github.com/trialsd/trialsd/internal/store"
)

// Query hands out the store's statements as sqlc reads them: the one
// named, without its comments or the next query, and none for an unknown
// name.
func TestQueryReadsOneNamedQuery(t *testing.T) {
	t.Parallel()
	sql, err := store.Query("TrialByIDForUpdate")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sql, "SELECT id, user_id,") || !strings.HasSuffix(sql, "FROM trials WHERE id = @id FOR UPDATE") {
		t.Errorf("TrialByIDForUpdate = %q", sql)
	}
	if strings.Contains(sql, "--") || strings.Contains(sql, "ORDER BY") {
		t.Errorf("TrialByIDForUpdate holds a comment or the next query: %q", sql)
	}
	if _, err := store.Query("NoSuchQuery"); err == nil {
		t.Error("an unknown query was found")
	}
}
