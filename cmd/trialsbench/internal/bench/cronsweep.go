package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cronSweep is the peer most teams write instead of a scheduler: one
// set-based UPDATE of everything due, every interval.
const cronSweep = `UPDATE trials SET expired_date = now() WHERE expiration_date <= now() AND expired_date IS NULL`

// CronReport is scenario 3: the cron-sweep peer on the storm's data shape.
type CronReport struct {
	Meta
	IntervalS float64 `json:"intervalS"`
	Trials    int     `json:"trials"`
	WindowS   float64 `json:"windowS"`
	Expired   int     `json:"expired"`
	Sweeps    []sweep `json:"sweeps"`
	// SweepRowsPerSecond is rows updated per second spent in sweeps: the
	// set-based UPDATE's raw speed.
	SweepRowsPerSecond float64    `json:"sweepRowsPerSecond"`
	SustainedPerSecond float64    `json:"sustainedPerSecond"`
	Lag                Dist       `json:"lag"`
	LagOverTime        []lagPoint `json:"lagOverTime"`
	// Ours is the storm's lag of this run, beside (zero if it did not run).
	Ours         Dist `json:"oursLag"`
	oursOverTime []lagPoint
}

// sweep is one run of the UPDATE.
type sweep struct {
	AtS       float64 `json:"atS"` // from the window's start
	DurationS float64 `json:"durationS"`
	Rows      int64   `json:"rows"`
}

func (r *CronReport) table() [][2]string {
	var total time.Duration
	for _, s := range r.Sweeps {
		total += time.Duration(s.DurationS * float64(time.Second))
	}
	rows := [][2]string{
		{"sweep interval", fmt.Sprintf("%gs", r.IntervalS)},
		{"trials due within window", fmt.Sprintf("%d within %gs (%d expired)", r.Trials, r.WindowS, r.Expired)},
		{"sweeps", fmt.Sprintf("%d, %.3fs in total; %s while sweeping", len(r.Sweeps), total.Seconds(), fmtRate(r.SweepRowsPerSecond, "rows/s"))},
		{"sustained transitions/s", fmtRate(r.SustainedPerSecond, "/s")},
		{"cron lag", fmtDist(r.Lag)},
	}
	if r.Ours.N > 0 {
		rows = append(rows, [2]string{"trialsd lag (storm)", fmtDist(r.Ours)})
	}
	return rows
}

func (h *harness) runCron(ctx context.Context) (_ report, err error) {
	began := time.Now()
	rep := &CronReport{Meta: Meta{Scenario: ScenarioCron, At: began}, IntervalS: h.opts.CronInterval.Seconds(),
		Trials: h.opts.StormTrials, WindowS: h.opts.StormWindow.Seconds()}
	db, cfg, err := h.scenarioDB(ctx, ScenarioCron, 4)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	rep.Database = db.Name
	adminID, err := createAdmin(ctx, db.Pool)
	if err != nil {
		return nil, err
	}
	from := domain.Instant(time.Now().Add(loadLead(h.opts.StormTrials)))
	l, err := loadTrials(ctx, db.Pool, trialLoad{N: h.opts.StormTrials, From: from, Window: h.opts.StormWindow, AdminID: adminID, Config: cfg})
	if err != nil {
		return nil, err
	}
	// The cron starts when the data is in, at no particular phase of the
	// window, as a real one would.
	if rep.Sweeps, err = sweepUntilDone(ctx, db.Pool, l, from, h.opts.CronInterval, h.opts.StormWindow+h.opts.Timeout); err != nil {
		return nil, err
	}
	lags, err := readLags(ctx, db.Pool, l, from)
	if err != nil {
		return nil, err
	}
	rep.Expired = len(lags)
	rep.Lag = distOf(lagValues(lags))
	rep.LagOverTime = lagSeries(lags)
	var rows int64
	var busy, span float64
	for _, s := range rep.Sweeps {
		rows += s.Rows
		busy += s.DurationS
	}
	for _, x := range lags {
		span = max(span, x.DueS+x.LagMs/1000)
	}
	if busy > 0 {
		rep.SweepRowsPerSecond = round1(float64(rows) / busy)
	}
	if span > 0 {
		rep.SustainedPerSecond = round1(float64(rep.Expired) / span)
	}
	rep.ElapsedS = round1(time.Since(began).Seconds())
	return rep, nil
}

// withStorm puts trialsd's lag of the same run beside the peer's.
func (r *CronReport) withStorm(storm *StormReport) {
	r.Ours = storm.Lag
	r.oursOverTime = storm.LagOverTime
}

// charts is lag over time, the peer's and (when the storm ran) trialsd's.
func (r *CronReport) charts() map[string]string {
	series := []chartSeries{seriesOf("cron sweep p99", "#7f7f7f", r.LagOverTime, func(p lagPoint) float64 { return p.P99Ms })}
	if r.oursOverTime != nil {
		series = append(series, seriesOf("trialsd p99", "#ff7f0e", r.oursOverTime, func(p lagPoint) float64 { return p.P99Ms }),
			seriesOf("trialsd max", "#d62728", r.oursOverTime, func(p lagPoint) float64 { return p.MaxMs }))
	}
	return map[string]string{ScenarioCron + ".svg": lagChart(
		fmt.Sprintf("Expiry lag: trialsd vs a %gs cron sweep, %d trials due within %gs", r.IntervalS, r.Trials, r.WindowS),
		"due time (s from the window's start)", series)}
}

// sweepUntilDone runs the sweep every interval until every trial of l has
// expired or limit passes.
func sweepUntilDone(ctx context.Context, pool *pgxpool.Pool, l loaded, origin time.Time, interval, limit time.Duration) ([]sweep, error) {
	var sweeps []sweep
	done := allExpired(pool, l)
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		at := time.Now()
		tag, err := pool.Exec(ctx, cronSweep)
		if err != nil {
			return sweeps, fmt.Errorf("sweeping: %w", err)
		}
		sweeps = append(sweeps, sweep{AtS: round3(at.Sub(origin).Seconds()), DurationS: round3(time.Since(at).Seconds()), Rows: tag.RowsAffected()})
		if ok, err := done(ctx); err != nil || ok {
			return sweeps, err
		}
		if time.Now().After(deadline) {
			return sweeps, fmt.Errorf("cron sweep: trials still unexpired after %s", limit)
		}
		select {
		case <-ctx.Done():
			return sweeps, ctx.Err()
		case <-tick.C:
		}
	}
}
