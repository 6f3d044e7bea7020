package accounts

import (
	"context"
	"errors"
	"testing"

	"github.com/alexedwards/argon2id"
)

// The daemon's parameters are OWASP's first argon2id recommendation,
// written out here rather than read from owaspParams, so that a change to
// them fails this test; and its constant dummy hash costs what a real
// user's hash costs, or a login's time tells whether the name exists.
func TestDaemonPasswordsUseOWASPParams(t *testing.T) {
	t.Parallel()
	owasp := argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	p := NewPasswords()
	h, err := p.Hash(context.Background(), "a-long-enough-password")
	if err != nil {
		t.Fatal(err)
	}
	for name, hash := range map[string]string{"dummy": p.dummy, "new": h} {
		got, _, _, err := argon2id.DecodeHash(hash)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if *got != owasp {
			t.Errorf("%s hash has %+v, want OWASP's %+v", name, *got, owasp)
		}
	}
	if ok, err := argon2id.ComparePasswordAndHash(dummyPassword, p.dummy); err != nil || !ok {
		t.Errorf("dummy hash does not verify its own password: %v %v", ok, err)
	}
}

// The tests' Passwords make real argon2id hashes, cheaply, that the
// daemon's Passwords verify, and a dummy hash of their own parameters.
func TestTestPasswordsAreCheapAndReal(t *testing.T) {
	t.Parallel()
	p := NewTestPasswords()
	h, err := p.Hash(context.Background(), "a-long-enough-password")
	if err != nil {
		t.Fatal(err)
	}
	for name, hash := range map[string]string{"dummy": p.dummy, "new": h} {
		got, _, _, err := argon2id.DecodeHash(hash)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Memory != 64 || got.Iterations != 1 {
			t.Errorf("%s hash has %+v, want 64 KiB and one pass", name, *got)
		}
	}
	if ok, err := NewPasswords().compare(context.Background(), "a-long-enough-password", &h); err != nil || !ok {
		t.Errorf("the daemon's Passwords do not verify a test hash: %v %v", ok, err)
	}
	if ok, err := p.compare(context.Background(), dummyPassword, nil); err != nil || !ok {
		t.Errorf("dummy hash does not verify its own password: %v %v", ok, err)
	}
}

// Hashes made before the parameters changed record the old ones and must
// still let their users in.
func TestOldParamsStillVerify(t *testing.T) {
	t.Parallel()
	old, err := argon2id.CreateHash("pa55word!", argon2id.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := NewPasswords().compare(context.Background(), "pa55word!", &old); err != nil || !ok {
		t.Errorf("old hash: %v %v", ok, err)
	}
}

// Every password hash and check, whatever asks for it, waits for one of the
// Passwords' slots: with all of them taken, a caller that gives up gets its
// context's cause and costs nothing; once one frees, it runs, and gives the
// slot back.
func TestPasswordWorkWaitsForASlot(t *testing.T) {
	t.Parallel()
	p := NewTestPasswords()
	work := map[string]func(context.Context) error{
		"check": func(ctx context.Context) error {
			ok, err := p.compare(ctx, dummyPassword, nil)
			if err == nil && !ok {
				return errors.New("the dummy hash did not verify its password")
			}
			return err
		},
		"hash": func(ctx context.Context) error {
			_, err := p.Hash(ctx, "a-long-enough-password")
			return err
		},
	}
	for name, do := range work {
		for range cap(p.slots) {
			p.slots <- struct{}{}
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		gone := errors.New("client went away")
		cancel(gone)
		if err := do(ctx); !errors.Is(err, gone) {
			t.Fatalf("%s with every slot taken: %v, want the context's cause", name, err)
		}
		<-p.slots
		if err := do(context.Background()); err != nil {
			t.Fatalf("%s with a slot free: %v", name, err)
		}
		if len(p.slots) != cap(p.slots)-1 {
			t.Errorf("%s kept its slot: %d of %d taken", name, len(p.slots), cap(p.slots))
		}
		for len(p.slots) > 0 {
			<-p.slots
		}
	}
}
