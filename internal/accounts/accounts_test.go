package accounts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// t0 is where every test's clock starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keyPattern is what CreateAdmin and CreateAPIKey issue.
var keyPattern = regexp.MustCompile(`^ei_[0-9a-f]{64}$`)

// displayPrefixLen is how much of a key listings show: "ei_" and 8 characters.
const displayPrefixLen = len(accounts.KeyPrefix) + 8

const adminCreatedKeyName = "created by users create-admin"

type testBundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
	clk  *clock.Stub
	svc  *accounts.Service
	q    *store.Queries
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := testdb.New(t)
	clk := clock.NewStub(t0)
	return &testBundle{
		ctx:  context.Background(),
		pool: pool,
		clk:  clk,
		svc:  accounts.New(pool, clk, accounts.NewTestPasswords()),
		q:    store.New(pool),
	}
}

// insertUser adds a plain (non-admin) user the way sign-up would.
func (b *testBundle) insertUser(t *testing.T, username, email string, passwordHash *string) store.Account {
	t.Helper()
	u, err := b.q.InsertUser(b.ctx, store.InsertUserParams{
		Username: username, Email: email, Name: username, PasswordHash: passwordHash, Now: b.clk.Now(),
	})
	if err != nil {
		t.Fatalf("InsertUser(%s): %v", username, err)
	}
	return u
}

func (b *testBundle) createAdmin(t *testing.T, username, email, password string) (domain.User, string) {
	t.Helper()
	u, key, err := b.svc.CreateAdmin(b.ctx, username, email, password)
	if err != nil {
		t.Fatalf("CreateAdmin(%q, %q): %v", username, email, err)
	}
	return u, key
}

func (b *testBundle) createKey(t *testing.T, username, name string) string {
	t.Helper()
	key, err := b.svc.CreateAPIKey(b.ctx, username, name)
	if err != nil {
		t.Fatalf("CreateAPIKey(%q, %q): %v", username, name, err)
	}
	if !keyPattern.MatchString(key) {
		t.Fatalf("CreateAPIKey() = %q, want ei_ and 64 hex characters", key)
	}
	return key
}

// passwordHash returns users.password_hash of the user with id.
func (b *testBundle) passwordHash(t *testing.T, id int64) *string {
	t.Helper()
	var h *string
	if err := b.pool.QueryRow(b.ctx, `SELECT password_hash FROM users WHERE id = $1`, id).Scan(&h); err != nil {
		t.Fatalf("reading password hash of user %d: %v", id, err)
	}
	return h
}

func (b *testBundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

func wantCode(t *testing.T, what string, err error, want apperr.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil, want %s", what, want)
	}
	if got := apperr.CodeOf(err); got != want {
		t.Fatalf("%s: code = %s (%v), want %s", what, got, err, want)
	}
}

func wantPasswordMatches(t *testing.T, hash *string, password string) {
	t.Helper()
	if hash == nil {
		t.Fatal("password_hash is NULL, want an argon2id hash")
	}
	if !strings.HasPrefix(*hash, "$argon2id$") {
		t.Fatalf("password_hash = %q, want an argon2id hash", *hash)
	}
	if strings.Contains(*hash, password) {
		t.Fatalf("password_hash %q contains the plain password", *hash)
	}
	ok, err := argon2id.ComparePasswordAndHash(password, *hash)
	if err != nil || !ok {
		t.Fatalf("ComparePasswordAndHash(%q) = %v, %v; want true", password, ok, err)
	}
}

func TestCreateAdminCreatesUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const password = "s3cret-password"

	u, key := b.createAdmin(t, "root", "root@example.com", password)

	if u.ID == 0 || u.Username != "root" || u.Email != "root@example.com" || !u.IsAdmin {
		t.Fatalf("CreateAdmin() user = %+v, want admin root <root@example.com>", u)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(u.PublicID) {
		t.Errorf("PublicID = %q, want 32 hex characters", u.PublicID)
	}
	if !keyPattern.MatchString(key) {
		t.Fatalf("CreateAdmin() key = %q, want ei_ and 64 hex characters", key)
	}

	row, err := b.q.UserByID(b.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !row.IsAdmin || !row.CreatedAt.Equal(t0) {
		t.Errorf("stored user: is_admin = %v, created_at = %v; want true, %v (the stub clock)", row.IsAdmin, row.CreatedAt, t0)
	}
	wantPasswordMatches(t, row.PasswordHash, password)
	if ok, _ := argon2id.ComparePasswordAndHash("wrong-password", *row.PasswordHash); ok {
		t.Error("the stored hash accepts a wrong password")
	}

	got, err := b.svc.AuthenticateAPIKey(b.ctx, key)
	if err != nil {
		t.Fatalf("AuthenticateAPIKey(new admin key): %v", err)
	}
	if got != u {
		t.Fatalf("AuthenticateAPIKey() = %+v, want %+v", got, u)
	}

	keys, err := b.svc.ListAPIKeys(b.ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Name != adminCreatedKeyName || !keys[0].CreatedAt.Equal(t0) || keys[0].RevokedAt != nil {
		t.Fatalf("ListAPIKeys() = %+v, want the one key issued by create-admin at %v", keys, t0)
	}
}

func TestCreateAdminWithoutPasswordStoresNone(t *testing.T) {
	t.Parallel()
	b := setup(t)

	u, key := b.createAdmin(t, "root", "root@example.com", "")
	if h := b.passwordHash(t, u.ID); h != nil {
		t.Fatalf("password_hash = %q, want NULL for an admin created without a password", *h)
	}
	if got, err := b.svc.AuthenticateAPIKey(b.ctx, key); err != nil || got.ID != u.ID || !got.IsAdmin {
		t.Fatalf("AuthenticateAPIKey() = %+v, %v; want admin %d", got, err, u.ID)
	}
}

func TestCreateAdminPromotesExistingUser(t *testing.T) {
	t.Parallel()
	const oldHash = "$argon2id$v=19$m=65536,t=1,p=2$b2xkLXNhbHQ$b2xkLWhhc2g" // never verified, only compared

	tests := []struct {
		name     string
		username string // as given to CreateAdmin; the user is stored as "alice"
		password string
	}{
		{name: "without password keeps the hash", username: "alice"},
		{name: "with password replaces the hash", username: "alice", password: "new-password"},
		{name: "username matched ignoring case", username: "ALICE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			old := oldHash
			existing := b.insertUser(t, "alice", "alice@example.com", &old)
			if existing.IsAdmin {
				t.Fatal("InsertUser created an admin")
			}
			promotedAt := b.clk.Advance(time.Hour)

			// The e-mail given is ignored for an existing user.
			u, key := b.createAdmin(t, tt.username, "", tt.password)

			if u.ID != existing.ID || u.PublicID != existing.PublicID {
				t.Fatalf("CreateAdmin() user id = %d/%s, want the existing %d/%s", u.ID, u.PublicID, existing.ID, existing.PublicID)
			}
			if !u.IsAdmin || u.Username != "alice" || u.Email != "alice@example.com" {
				t.Fatalf("CreateAdmin() user = %+v, want alice promoted to admin", u)
			}
			row, err := b.q.UserByID(b.ctx, existing.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !row.IsAdmin || !row.UpdatedAt.Equal(promotedAt) || !row.CreatedAt.Equal(t0) {
				t.Errorf("stored user: is_admin = %v, created_at = %v, updated_at = %v; want true, %v, %v",
					row.IsAdmin, row.CreatedAt, row.UpdatedAt, t0, promotedAt)
			}
			if tt.password == "" {
				if row.PasswordHash == nil || *row.PasswordHash != oldHash {
					t.Errorf("password_hash = %v, want the existing hash kept", row.PasswordHash)
				}
			} else {
				wantPasswordMatches(t, row.PasswordHash, tt.password)
			}
			if n := b.count(t, "users"); n != 1 {
				t.Errorf("%d users, want the one promoted", n)
			}

			got, err := b.svc.AuthenticateAPIKey(b.ctx, key)
			if err != nil || got.ID != existing.ID || !got.IsAdmin {
				t.Fatalf("AuthenticateAPIKey() = %+v, %v; want admin %d", got, err, existing.ID)
			}
		})
	}
}

func TestCreateAdminValidation(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		username  string
		email     string
		password  string
		wantCode  apperr.Code // "" means success
		wantField string
	}{
		{name: "empty username", username: "", email: "root@example.com", password: "s3cret-password", wantCode: apperr.Invalid, wantField: "username"},
		{name: "empty username without password", username: "", email: "root@example.com", wantCode: apperr.Invalid, wantField: "username"},
		{name: "new user without email", username: "root", email: "", wantCode: apperr.Invalid, wantField: "email"},
		{name: "new user without email but with password", username: "root", email: "", password: "s3cret-password", wantCode: apperr.Invalid, wantField: "email"},
		{name: "password of 7 characters", username: "root", email: "root@example.com", password: "1234567", wantCode: apperr.Invalid, wantField: "password"},
		{name: "password of 1 character", username: "root", email: "root@example.com", password: "x", wantCode: apperr.Invalid, wantField: "password"},
		{name: "short password promoting an existing user", username: "taken", password: "short", wantCode: apperr.Invalid, wantField: "password"},
		{name: "email taken by another user", username: "root", email: "taken@example.com", wantCode: apperr.Conflict},
		{name: "email taken ignoring case", username: "root", email: "TAKEN@example.COM", wantCode: apperr.Conflict},
		{name: "password of exactly 8 characters", username: "root", email: "root@example.com", password: "12345678"},
		{name: "8 bytes but 4 characters", username: "root", email: "root@example.com", password: "éééé", wantCode: apperr.Invalid, wantField: "password"},
		{name: "8 characters of 2 bytes", username: "root", email: "root@example.com", password: "éééééééé"},
		{name: "blank username", username: "    ", email: "root@example.com", wantCode: apperr.Invalid, wantField: "username"},
		{name: "username against the rule", username: "_root", email: "root@example.com", wantCode: apperr.Invalid, wantField: "username"},
		{name: "username too short", username: "abc", email: "root@example.com", wantCode: apperr.Invalid, wantField: "username"},
		{name: "email not an address", username: "root", email: "not-an-email", wantCode: apperr.Invalid, wantField: "email"},
		{name: "surrounding spaces are trimmed", username: " root ", email: " root@example.com "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			taken := b.insertUser(t, "taken", "Taken@Example.com", nil)

			u, key, err := b.svc.CreateAdmin(b.ctx, tt.username, tt.email, tt.password)
			if tt.wantCode == "" {
				if err != nil || !u.IsAdmin || !keyPattern.MatchString(key) {
					t.Fatalf("CreateAdmin() = %+v, %q, %v; want a new admin and key", u, key, err)
				}
				return
			}
			wantCode(t, "CreateAdmin()", err, tt.wantCode)
			var e *apperr.Error
			if !errors.As(err, &e) {
				t.Fatalf("CreateAdmin() error %v is not an *apperr.Error", err)
			}
			if e.Field != tt.wantField {
				t.Errorf("CreateAdmin() error field = %q, want %q", e.Field, tt.wantField)
			}
			if key != "" || u != (domain.User{}) {
				t.Errorf("CreateAdmin() = %+v, %q alongside an error; want zero values", u, key)
			}
			// A failed call writes nothing.
			if n := b.count(t, "users"); n != 1 {
				t.Errorf("%d users after a failed CreateAdmin, want 1", n)
			}
			if n := b.count(t, "api_keys"); n != 0 {
				t.Errorf("%d api keys after a failed CreateAdmin, want 0", n)
			}
			row, err := b.q.UserByID(b.ctx, taken.ID)
			if err != nil || row.IsAdmin || row.PasswordHash != nil {
				t.Errorf("existing user after a failed CreateAdmin = %+v, %v; want unchanged", row, err)
			}
		})
	}
}

func TestAPIKeysStoreOnlyHashAndPrefix(t *testing.T) {
	t.Parallel()
	b := setup(t)

	u, adminKey := b.createAdmin(t, "root", "root@example.com", "")
	keys := []string{adminKey, b.createKey(t, "root", "ci"), b.createKey(t, "root", "")}

	// Every column of every row, as Postgres renders it.
	var apiKeyRows []string
	rows, err := b.pool.Query(b.ctx, `SELECT k::text FROM api_keys k ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		apiKeyRows = append(apiKeyRows, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(apiKeyRows) != len(keys) {
		t.Fatalf("%d api_keys rows, want %d", len(apiKeyRows), len(keys))
	}
	var userRow string
	if err := b.pool.QueryRow(b.ctx, `SELECT u::text FROM users u WHERE id = $1`, u.ID).Scan(&userRow); err != nil {
		t.Fatal(err)
	}

	for i, key := range keys {
		secret := key[len(accounts.KeyPrefix):] // the random part
		for _, row := range append([]string{userRow}, apiKeyRows...) {
			if strings.Contains(row, key) || strings.Contains(row, secret) || strings.Contains(row, key[displayPrefixLen:]) {
				t.Errorf("key %d is stored in the clear: %s", i, row)
			}
		}

		var hash []byte
		var prefix string
		var revoked *time.Time
		sum := sha256.Sum256([]byte(key))
		err := b.pool.QueryRow(b.ctx, `SELECT key_hash, prefix, revoked_at FROM api_keys WHERE key_hash = $1`, sum[:]).
			Scan(&hash, &prefix, &revoked)
		if err != nil {
			t.Fatalf("key %d: no row with its SHA-256: %v", i, err)
		}
		if !bytes.Equal(hash, sum[:]) || revoked != nil {
			t.Errorf("key %d: key_hash = %x, revoked_at = %v; want %x, NULL", i, hash, revoked, sum)
		}
		if prefix != key[:displayPrefixLen] {
			t.Errorf("key %d: prefix = %q, want %q (ei_ and 8 characters)", i, prefix, key[:displayPrefixLen])
		}
	}
}

func TestListAPIKeysNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)

	_, adminKey := b.createAdmin(t, "root", "root@example.com", "")
	ciAt := b.clk.Advance(time.Hour)
	ciKey := b.createKey(t, "root", "ci")
	laptopAt := b.clk.Advance(time.Hour)
	laptopKey := b.createKey(t, "root", "laptop")
	b.createAdmin(t, "other", "other@example.com", "") // someone else's key is not listed

	keys, err := b.svc.ListAPIKeys(b.ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		key  string
		at   time.Time
	}{
		{"laptop", laptopKey, laptopAt},
		{"ci", ciKey, ciAt},
		{adminCreatedKeyName, adminKey, t0},
	}
	if len(keys) != len(want) {
		t.Fatalf("ListAPIKeys() returned %d keys, want %d: %+v", len(keys), len(want), keys)
	}
	for i, w := range want {
		k := keys[i]
		if k.Name != w.name || k.Prefix != w.key[:displayPrefixLen] || !k.CreatedAt.Equal(w.at) || k.RevokedAt != nil {
			t.Errorf("key %d = %+v, want name %q, prefix %q, created %v, not revoked", i, k, w.name, w.key[:displayPrefixLen], w.at)
		}
		if i > 0 && keys[i-1].ID <= k.ID {
			t.Errorf("key ids %d then %d: want newest first", keys[i-1].ID, k.ID)
		}
	}

	// The username is matched ignoring case, like everywhere else.
	if upper, err := b.svc.ListAPIKeys(b.ctx, "ROOT"); err != nil || len(upper) != len(want) {
		t.Errorf("ListAPIKeys(ROOT) = %d keys, %v; want %d", len(upper), err, len(want))
	}

	b.insertUser(t, "keyless", "keyless@example.com", nil)
	if none, err := b.svc.ListAPIKeys(b.ctx, "keyless"); err != nil || len(none) != 0 {
		t.Errorf("ListAPIKeys(keyless) = %+v, %v; want no keys", none, err)
	}
}

func TestRevokeAPIKey(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		ref  func(k store.APIKey) string
	}{
		{"by id", func(k store.APIKey) string { return strconv.FormatInt(k.ID, 10) }},
		{"by prefix", func(k store.APIKey) string { return k.Prefix }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, keptKey := b.createAdmin(t, "root", "root@example.com", "")
			revokedKey := b.createKey(t, "root", "ci")
			keys, err := b.svc.ListAPIKeys(b.ctx, "root")
			if err != nil || len(keys) != 2 || keys[0].Prefix != revokedKey[:displayPrefixLen] {
				t.Fatalf("ListAPIKeys() = %+v, %v; want the ci key first", keys, err)
			}
			ref := tt.ref(keys[0])
			if _, err := b.svc.AuthenticateAPIKey(b.ctx, revokedKey); err != nil {
				t.Fatalf("AuthenticateAPIKey() before revoking: %v", err)
			}

			revokedAt := b.clk.Advance(time.Minute)
			if err := b.svc.RevokeAPIKey(b.ctx, "root", ref); err != nil {
				t.Fatalf("RevokeAPIKey(%s): %v", ref, err)
			}

			_, err = b.svc.AuthenticateAPIKey(b.ctx, revokedKey)
			wantCode(t, "AuthenticateAPIKey(revoked key)", err, apperr.Unauthorized)
			if u, err := b.svc.AuthenticateAPIKey(b.ctx, keptKey); err != nil || u.Username != "root" {
				t.Fatalf("AuthenticateAPIKey(other key) = %+v, %v; want root still authenticated", u, err)
			}

			keys, err = b.svc.ListAPIKeys(b.ctx, "root")
			if err != nil || len(keys) != 2 {
				t.Fatalf("ListAPIKeys() after revoking = %+v, %v", keys, err)
			}
			if keys[0].RevokedAt == nil || !keys[0].RevokedAt.Equal(revokedAt) {
				t.Errorf("revoked key's revoked_at = %v, want %v", keys[0].RevokedAt, revokedAt)
			}
			if keys[1].RevokedAt != nil {
				t.Errorf("the other key was revoked too: %+v", keys[1])
			}

			b.clk.Advance(time.Minute)
			wantCode(t, "RevokeAPIKey(already revoked)", b.svc.RevokeAPIKey(b.ctx, "root", ref), apperr.NotFound)
			keys, _ = b.svc.ListAPIKeys(b.ctx, "root")
			if keys[0].RevokedAt == nil || !keys[0].RevokedAt.Equal(revokedAt) {
				t.Errorf("revoking again moved revoked_at to %v, want %v kept", keys[0].RevokedAt, revokedAt)
			}
		})
	}
}

func TestRevokeAPIKeyNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, rootKey := b.createAdmin(t, "root", "root@example.com", "")
	_, otherKey := b.createAdmin(t, "other", "other@example.com", "")
	otherKeys, err := b.svc.ListAPIKeys(b.ctx, "other")
	if err != nil || len(otherKeys) != 1 {
		t.Fatalf("ListAPIKeys(other) = %+v, %v", otherKeys, err)
	}

	tests := []struct {
		name     string
		username string
		ref      string
	}{
		{"unknown id", "root", "999999"},
		{"zero id", "root", "0"},
		{"unknown prefix", "root", "ei_00000000"},
		{"empty reference", "root", ""},
		{"whole key instead of prefix", "root", rootKey},
		{"another user's key by id", "root", strconv.FormatInt(otherKeys[0].ID, 10)},
		{"another user's key by prefix", "root", otherKeys[0].Prefix},
		{"unknown username", "nobody", strconv.FormatInt(otherKeys[0].ID, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: each case must also leave every key usable for the next.
			wantCode(t, "RevokeAPIKey()", b.svc.RevokeAPIKey(b.ctx, tt.username, tt.ref), apperr.NotFound)
			for _, key := range []string{rootKey, otherKey} {
				if _, err := b.svc.AuthenticateAPIKey(b.ctx, key); err != nil {
					t.Fatalf("a key was revoked by a failed RevokeAPIKey: %v", err)
				}
			}
		})
	}
}

func TestUnknownUsernameIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createAdmin(t, "root", "root@example.com", "")

	_, err := b.svc.CreateAPIKey(b.ctx, "nobody", "ci")
	wantCode(t, "CreateAPIKey(nobody)", err, apperr.NotFound)
	_, err = b.svc.ListAPIKeys(b.ctx, "nobody")
	wantCode(t, "ListAPIKeys(nobody)", err, apperr.NotFound)
	wantCode(t, "RevokeAPIKey(nobody)", b.svc.RevokeAPIKey(b.ctx, "nobody", "1"), apperr.NotFound)
	if n := b.count(t, "api_keys"); n != 1 {
		t.Errorf("%d api keys, want only root's", n)
	}
}

// badKeys derives keys that must never authenticate from a valid one.
var badKeys = []struct {
	name string
	key  func(valid string) string
}{
	{"empty", func(string) string { return "" }},
	{"abc", func(string) string { return "abc" }},
	{"prefix only", func(string) string { return "ei_" }},
	{"ei_short", func(string) string { return "ei_short" }},
	{"64 hex without prefix", func(v string) string { return v[len(accounts.KeyPrefix):] }},
	{"prefix in upper case", func(v string) string { return "EI_" + v[len(accounts.KeyPrefix):] }},
	{"prefix twice", func(v string) string { return accounts.KeyPrefix + v }},
	{"dash inside", func(v string) string { return v[:20] + "-" + v[21:] }},
	{"unicode inside", func(v string) string { return v[:20] + "é" + v[22:] }},
	{"unicode digit inside", func(v string) string { return v[:20] + "٣" + v[22:] }},
	{"trailing newline", func(v string) string { return v + "\n" }},
	{"leading space", func(v string) string { return " " + v }},
	{"200 characters", func(string) string { return accounts.KeyPrefix + strings.Repeat("a1", 100) }},
	{"31 characters", func(v string) string { return v[:len(accounts.KeyPrefix)+31] }},
	{"one character short", func(v string) string { return v[:len(v)-1] }},
	{"one character more", func(v string) string { return v + "0" }},
	{"well-formed but unknown", func(string) string { return accounts.KeyPrefix + strings.Repeat("0", 64) }},
	{"valid key in upper case", func(v string) string { return accounts.KeyPrefix + strings.ToUpper(v[len(accounts.KeyPrefix):]) }},
	{"longest well-formed but unknown", func(string) string { return accounts.KeyPrefix + strings.Repeat("Z", 128) }},
}

func TestAuthenticateAPIKeyRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, valid := b.createAdmin(t, "root", "root@example.com", "")

	for _, tt := range badKeys {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := tt.key(valid)
			u, err := b.svc.AuthenticateAPIKey(b.ctx, key)
			wantCode(t, "AuthenticateAPIKey("+strconv.Quote(key)+")", err, apperr.Unauthorized)
			if u != (domain.User{}) {
				t.Errorf("AuthenticateAPIKey() returned user %+v alongside an error", u)
			}
			if msg := apperr.MessageOf(err); strings.Contains(msg, key) && key != "" {
				t.Errorf("error message %q echoes the key", msg)
			}
		})
	}
}

// Malformed keys are turned away before any query: with the database gone
// they are still Unauthorized, while a well-formed key needs the database.
func TestAuthenticateAPIKeyMalformedNeedsNoDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := testdb.NewWithURL(t)
	pool, err := database.Open(ctx, database.PoolConfig{URL: url, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	svc := accounts.New(pool, clock.NewStub(t0), accounts.NewTestPasswords())

	for _, key := range []string{"", "abc", "ei_", "ei_short", strings.Repeat("a", 64), "ei_" + strings.Repeat("é", 32), "ei_" + strings.Repeat("a", 200)} {
		_, err := svc.AuthenticateAPIKey(ctx, key)
		wantCode(t, "AuthenticateAPIKey("+strconv.Quote(key)+") on a closed pool", err, apperr.Unauthorized)
	}
	_, err = svc.AuthenticateAPIKey(ctx, accounts.KeyPrefix+strings.Repeat("0", 64))
	if err == nil || apperr.CodeOf(err) == apperr.Unauthorized {
		t.Fatalf("AuthenticateAPIKey(well-formed) on a closed pool = %v; want a database error, not Unauthorized", err)
	}
}
