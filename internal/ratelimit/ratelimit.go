// Package ratelimit limits events per key (a client address, an account)
// with a token bucket per key, forgetting keys idle for long enough that
// their bucket is full again, so memory stays bounded by active clients.
//
// Limits are per process: with N replicas behind a balancer a client gets up
// to N times the rate, which bounds abuse without a shared store.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
)

// Limiter allows limit.Events per limit.Per for each key, in bursts of up to
// limit.Events.
type Limiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	idle    time.Duration
	clock   clock.Clock
	buckets map[string]*bucket
	sweptAt time.Time
}

type bucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

// New returns a limiter for limit.
func New(limit config.RateLimit, clk clock.Clock) *Limiter {
	return &Limiter{
		limit:   rate.Limit(float64(limit.Events) / limit.Per.Seconds()),
		burst:   limit.Events,
		idle:    limit.Per,
		clock:   clk,
		buckets: map[string]*bucket{},
	}
}

// Allow takes one event for key now. When the key is over its limit it
// returns false and how long until an event would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{limiter: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.lastSeen = now
	r := b.limiter.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// sweep forgets buckets idle for a whole period (they would be full again),
// at most once per period.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.sweptAt) < l.idle {
		return
	}
	l.sweptAt = now
	for k, b := range l.buckets {
		if now.Sub(b.lastSeen) >= l.idle {
			delete(l.buckets, k)
		}
	}
}

// Len is how many keys are tracked, for tests and metrics.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
