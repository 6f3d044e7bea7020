package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/clock"
)

// Credentials of the admin every scenario's database gets.
const (
	adminUsername = "benchadmin"
	adminPassword = "trialsbench-admin-password"
)

// createAdmin creates the admin whose name the loaded trials carry.
func createAdmin(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	u, _, err := accounts.New(pool, clock.Real{}, accounts.NewPasswords()).CreateAdmin(ctx, adminUsername, "benchadmin@example.com", adminPassword)
	if err != nil {
		return 0, fmt.Errorf("creating the bench admin: %w", err)
	}
	return u.ID, nil
}

// waitUntil polls cond every interval until it holds, ctx ends or limit
// passes. Another process does the work, so polling is the only way to see it.
func waitUntil(ctx context.Context, limit, every time.Duration, what string, cond func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// allExpired reports whether every trial of l has expired. It asks for one
// active trial in the range, the latest due, which the (state,
// expiration_date) index finds or rules out at once: counting the range's
// unexpired rows instead took 59 ms a poll on 60k trials, a fifth of
// Postgres's CPU during the drain it was measuring, and asking for any one
// (NOT EXISTS, which drops an ORDER BY) walked the index from the earliest
// due, over the entries every expiry so far had left behind: 34 ms a poll
// late in a storm, 8 s of the Postgres CPU counted against 100k expiries.
func allExpired(pool *pgxpool.Pool, l loaded) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		var done bool
		err := pool.QueryRow(ctx, `SELECT count(*) = 0 FROM (SELECT 1 FROM trials
			WHERE state = 'active' AND id BETWEEN $1 AND $2 ORDER BY expiration_date DESC LIMIT 1) AS left_`,
			l.FirstTrialID, l.LastTrialID).Scan(&done)
		return done, err
	}
}

// jobsDone reports whether no job of kind is left to run. Like
// allExpired it looks for one row, not a count: River's fetch index leads
// with the state, so one unfinished job, or none, is found at once.
func jobsDone(pool *pgxpool.Pool, kind string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		var done bool
		err := pool.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM river_job
			WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND kind = $1)`, kind).Scan(&done)
		return done, err
	}
}

// readLags returns each expired trial's due time (seconds after origin) and
// lag, expired_date − expiration_date, as the database recorded them.
func readLags(ctx context.Context, pool *pgxpool.Pool, l loaded, origin time.Time) ([]trialLag, error) {
	rows, err := pool.Query(ctx, `SELECT extract(epoch FROM expiration_date - $3::timestamptz)::float8,
			(extract(epoch FROM expired_date - expiration_date) * 1000)::float8
		FROM trials WHERE id BETWEEN $1 AND $2 AND expired_date IS NOT NULL`, l.FirstTrialID, l.LastTrialID, origin)
	if err != nil {
		return nil, fmt.Errorf("reading lags: %w", err)
	}
	defer rows.Close()
	var out []trialLag
	for rows.Next() {
		var t trialLag
		if err := rows.Scan(&t.DueS, &t.LagMs); err != nil {
			return nil, fmt.Errorf("reading lags: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading lags: %w", err)
	}
	return out, nil
}

// drain is how fast a backlog was worked off: the completions' span in the
// database's own timestamps, so start-up and polling do not count.
type drain struct {
	Done      int     `json:"done"`
	SpanS     float64 `json:"spanS"`
	PerSecond float64 `json:"perSecond"`
}

// drainOf measures completions from the timestamps of one column.
func drainOf(ctx context.Context, pool *pgxpool.Pool, query string, args ...any) (drain, error) {
	var d drain
	var first, last *time.Time
	if err := pool.QueryRow(ctx, query, args...).Scan(&d.Done, &first, &last); err != nil {
		return d, fmt.Errorf("measuring drain: %w", err)
	}
	switch {
	case first == nil || last == nil:
	case last.After(*first):
		d.SpanS = round3(last.Sub(*first).Seconds())
		d.PerSecond = round1(float64(d.Done-1) / last.Sub(*first).Seconds())
	default:
		// All in one instant (one batch, one transaction): a rate over the
		// timestamps' resolution, a millisecond, is the most that can be said.
		d.PerSecond = round1(float64(d.Done) / 0.001)
	}
	return d, nil
}

func trialsDrain(ctx context.Context, pool *pgxpool.Pool, l loaded) (drain, error) {
	return drainOf(ctx, pool, `SELECT count(*)::int, min(expired_date), max(expired_date) FROM trials
		WHERE id BETWEEN $1 AND $2 AND expired_date IS NOT NULL`, l.FirstTrialID, l.LastTrialID)
}

// autoLead is how long after it starts loading n trials (at most
// 150 µs each on a busy 2-core machine) into a running daemon's
// database the first one falls due: the load's time, plus River's
// scheduler interval (5 s), since the scheduler only promotes jobs due within
// its next pass. Trials started days ahead, as in production, never meet
// this; a storm loaded with less lead would measure the load, not trialsd.
func autoLead(n int) time.Duration {
	return 7*time.Second + time.Duration(n)*150*time.Microsecond
}

// loadLead is the load's time alone, for the cron peer.
func loadLead(n int) time.Duration {
	return time.Second + time.Duration(n)*150*time.Microsecond
}
