package accounts

import (
	"context"
	"errors"
	"testing"

	"github.com/alexedwards/argon2id"

	"github.com/trialsd/trialsd/internal/config"
)

// The constant dummy hash must cost what a real user's hash costs, or a
// login's time tells whether the name exists.
func TestDummyHashUsesPasswordParams(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("a-long-enough-password")
	if err != nil {
		t.Fatal(err)
	}
	for name, hash := range map[string]string{"dummy": dummyHash, "new": h} {
		p, _, _, err := argon2id.DecodeHash(hash)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if *p != *passwordParams {
			t.Errorf("%s hash has %+v, want %+v", name, *p, *passwordParams)
		}
	}
	if ok, err := argon2id.ComparePasswordAndHash("no user has this password", dummyHash); err != nil || !ok {
		t.Errorf("dummy hash does not verify its own password: %v %v", ok, err)
	}
}

// Hashes made before passwordParams changed record the old parameters and
// must still let their users in.
func TestOldParamsStillVerify(t *testing.T) {
	t.Parallel()
	old, err := argon2id.CreateHash("pa55word!", argon2id.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	tk := NewTokens(nil, nil, config.Auth{})
	if ok, err := tk.checkPassword(context.Background(), "pa55word!", old); err != nil || !ok {
		t.Errorf("old hash: %v %v", ok, err)
	}
}

func TestCheckPasswordWaitsForASlot(t *testing.T) {
	t.Parallel()
	tk := NewTokens(nil, nil, config.Auth{})
	for range cap(tk.checks) {
		tk.checks <- struct{}{}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	gone := errors.New("client went away")
	cancel(gone)
	if ok, err := tk.checkPassword(ctx, "no user has this password", dummyHash); ok || !errors.Is(err, gone) {
		t.Fatalf("with every slot taken: %v %v, want the context's cause", ok, err)
	}
	<-tk.checks
	if ok, err := tk.checkPassword(context.Background(), "no user has this password", dummyHash); err != nil || !ok {
		t.Fatalf("with a slot free: %v %v", ok, err)
	}
	if len(tk.checks) != cap(tk.checks)-1 {
		t.Errorf("a finished check kept its slot: %d of %d taken", len(tk.checks), cap(tk.checks))
	}
}
