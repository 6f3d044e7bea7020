package accounts

import (
	"context"
	"errors"
	"testing"

	"github.com/alexedwards/argon2id"
)

// The constant dummy hash must cost what a real user's hash costs, or a
// login's time tells whether the name exists.
func TestDummyHashUsesPasswordParams(t *testing.T) {
	t.Parallel()
	h, err := HashPassword(context.Background(), "a-long-enough-password")
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
	if ok, err := comparePassword(context.Background(), "pa55word!", old); err != nil || !ok {
		t.Errorf("old hash: %v %v", ok, err)
	}
}

// Every password hash and check, whatever asks for it, waits for one of the
// process's password slots: with all of them taken, a caller that gives up
// gets its context's cause and costs nothing; once one frees, it runs, and
// gives the slot back.
func TestPasswordWorkWaitsForASlot(t *testing.T) {
	// Not parallel: it takes the process's slots, which the other tests
	// of the package need.
	work := map[string]func(context.Context) error{
		"check": func(ctx context.Context) error {
			ok, err := comparePassword(ctx, "no user has this password", dummyHash)
			if err == nil && !ok {
				return errors.New("the dummy hash did not verify its password")
			}
			return err
		},
		"hash": func(ctx context.Context) error {
			_, err := HashPassword(ctx, "a-long-enough-password")
			return err
		},
	}
	// Should the test fail with the slots taken, give them back, or every
	// other test of the package would wait for them until the timeout.
	t.Cleanup(func() {
		for len(passwordSlots) > 0 {
			<-passwordSlots
		}
	})
	for name, do := range work {
		for range cap(passwordSlots) {
			passwordSlots <- struct{}{}
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		gone := errors.New("client went away")
		cancel(gone)
		if err := do(ctx); !errors.Is(err, gone) {
			t.Fatalf("%s with every slot taken: %v, want the context's cause", name, err)
		}
		<-passwordSlots
		if err := do(context.Background()); err != nil {
			t.Fatalf("%s with a slot free: %v", name, err)
		}
		if len(passwordSlots) != cap(passwordSlots)-1 {
			t.Errorf("%s kept its slot: %d of %d taken", name, len(passwordSlots), cap(passwordSlots))
		}
		for len(passwordSlots) > 0 {
			<-passwordSlots
		}
	}
}
