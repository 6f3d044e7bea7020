package httpapi

import (
	"sync"
	"time"

	"github.com/trialsd/trialsd/internal/clock"
)

// KnownClients remembers which clients (clientKey) logged in to which
// accounts with the right password in the last knownFor, so that the
// per-account lockout, which an attacker can trigger from anywhere, does
// not keep an admin out of the clients they use. It is per process, like
// the limits: a restarted replica knows no client until each logs in
// again, and meanwhile an attack's lockout holds every client (an admin's
// way in then is `trialsd users create-admin`, which issues an API key).
type KnownClients struct {
	mu    sync.Mutex
	clock clock.Clock
	seen  map[knownPair]time.Time
}

type knownPair struct{ account, client string }

// knownFor is how long a login keeps its client known to the account, and
// maxKnown how many pairs are kept: the oldest go first.
const (
	knownFor = 30 * 24 * time.Hour
	maxKnown = 10_000
)

// NewKnownClients returns an empty set, timed by clk.
func NewKnownClients(clk clock.Clock) *KnownClients {
	return &KnownClients{clock: clk, seen: map[knownPair]time.Time{}}
}

func (k *KnownClients) has(account, client string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	at, ok := k.seen[knownPair{account, client}]
	return ok && k.clock.Now().Sub(at) < knownFor
}

// add records a login, making room by forgetting the expired pairs and,
// if none has expired, the oldest.
func (k *KnownClients) add(account, client string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clock.Now()
	if len(k.seen) >= maxKnown {
		oldest, at := knownPair{}, now
		for p, t := range k.seen {
			if now.Sub(t) >= knownFor {
				delete(k.seen, p)
			} else if t.Before(at) {
				oldest, at = p, t
			}
		}
		if len(k.seen) >= maxKnown {
			delete(k.seen, oldest)
		}
	}
	k.seen[knownPair{account, client}] = now
}
