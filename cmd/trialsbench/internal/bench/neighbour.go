package bench

import (
	"context"
	"errors"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
)

// neighbourStorm is a second daemon on a database of its own, on the same
// Postgres, with a storm of its own due within the same window: the
// conditions of a shared Postgres, where another service's burst takes the
// cores and the server while the storm runs (-storm-neighbour-trials).
type neighbourStorm struct {
	db     *scratchDB
	daemon *daemonProc
	load   loaded
	from   time.Time
}

// startNeighbour creates the neighbour's database, starts its daemon and
// loads its trials due from from over the window. It returns nil, nil when
// the run has no neighbour.
func (h *harness) startNeighbour(ctx context.Context, from time.Time) (n *neighbourStorm, err error) {
	if h.opts.StormNeighbourTrials <= 0 {
		return nil, nil
	}
	db, cfg, err := h.scenarioDB(ctx, "neighbour", 8)
	if err != nil {
		return nil, err
	}
	n = &neighbourStorm{db: db, from: from}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.stop(ctx))
		}
	}()
	adminID, err := createAdmin(ctx, db.Pool)
	if err != nil {
		return n, err
	}
	if n.daemon, err = h.setup.start(ctx, db.URL, "neighbour", false); err != nil {
		return n, err
	}
	n.load, err = loadTrials(ctx, db.Pool, trialLoad{N: h.opts.StormNeighbourTrials, From: domain.Instant(from),
		Window: h.opts.StormWindow, AdminID: adminID, Config: cfg})
	return n, err
}

// finish waits for the neighbour's storm to end and returns its lag.
func (n *neighbourStorm) finish(ctx context.Context, h *harness) (Dist, error) {
	if n == nil {
		return Dist{}, nil
	}
	err := waitUntil(ctx, h.opts.StormWindow+h.opts.Timeout, 250*time.Millisecond, "every neighbour trial to expire", allExpired(n.db.Pool, n.load))
	lags, lagErr := readLags(ctx, n.db.Pool, n.load, n.from)
	return distOf(lagValues(lags)), errors.Join(err, lagErr)
}

// stop stops the neighbour's daemon and drops its database.
func (n *neighbourStorm) stop(ctx context.Context) error {
	if n == nil {
		return nil
	}
	var err error
	if n.daemon != nil {
		err = n.daemon.stop()
	}
	return errors.Join(err, n.db.Drop(context.WithoutCancel(ctx)))
}
