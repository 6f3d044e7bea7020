package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// An organization's public id is a UUIDv7 in 32 hex digits: its first 48
// bits are the Unix milliseconds it was made at, so organizations made
// together sit together in organizations_public_id_key.
func TestOrganizationPublicIDsAreTimeOrdered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := store.New(testdb.New(t))
	before := time.Now().UnixMilli()
	org, err := q.InsertOrganization(ctx, store.NewOrganization{Name: "o", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	id := org.PublicID
	if len(id) != 32 || id[12] != '7' || !strings.ContainsRune("89ab", rune(id[16])) {
		t.Fatalf("public id %q is not a UUIDv7 (version 7, RFC 9562 variant) in 32 hex digits", id)
	}
	ms, err := strconv.ParseInt(id[:12], 16, 64)
	if err != nil || ms < before || ms > after {
		t.Errorf("public id %q carries %d ms (%v), want the insert's time, within [%d, %d]", id, ms, err, before, after)
	}
}
