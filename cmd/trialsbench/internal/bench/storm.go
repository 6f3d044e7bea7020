package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/jobargs"
)

// profileUnavailable says why the storm report carries no CPU profile.
const profileUnavailable = "none: this trialsd has no " + pprofKey + " key, so it serves no /debug/pprof, " +
	"and the harness measures the daemon as built, unmodified"

// profileAsync takes a CPU profile of the daemon at addr in the background
// and delivers it (nil when addr is empty or the profile failed, which is
// logged: a missing profile does not void the measurements).
func (h *harness) profileAsync(ctx context.Context, addr, name string, after time.Duration) <-chan *profile {
	out := make(chan *profile, 1)
	if addr == "" || h.opts.ProfileSeconds <= 0 {
		out <- nil
		return out
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(after):
		}
		p, err := h.captureProfile(ctx, addr, h.opts.ProfileSeconds, name)
		if err != nil {
			h.log.WarnContext(ctx, "no CPU profile", "profile", name, "err", err)
		}
		out <- p
	}()
	return out
}

func fileOf(p *profile) string {
	if p == nil {
		return ""
	}
	return p.File
}

// StormReport is scenario 1: N trials due within a window against a
// running `trialsd serve`, then a backlog of trials already due.
type StormReport struct {
	Meta
	River  riverSettings `json:"river"`
	Trials int           `json:"trials"`
	// WindowS is the span their expiration dates are spread over.
	WindowS float64 `json:"windowS"`
	// Expired is how many expired before the wait ended (all, normally).
	Expired int `json:"expired"`
	// SustainedPerSecond is trials / (last expired − first due): during a
	// window the daemon cannot go faster than trials fall due.
	SustainedPerSecond float64 `json:"sustainedPerSecond"`
	Lag                Dist    `json:"lag"`
	// Replicas is how many daemons worked the window (-storm-replicas).
	Replicas int `json:"replicas"`
	// NeighbourTrials fell due within the same window on a database of
	// their own, worked by a daemon of their own on the same Postgres
	// (-storm-neighbour-trials); NeighbourLag is theirs.
	NeighbourTrials int  `json:"neighbourTrials,omitempty"`
	NeighbourLag    Dist `json:"neighbourLag,omitempty"`
	// Daemon is the daemon's CPU and memory from the window's start to the
	// last expiry; Postgres is every postgres process's CPU meanwhile.
	Daemon usage `json:"daemon"`
	// RSSIdleBytes is the daemon's RSS once ready, before any trial exists.
	RSSIdleBytes int64      `json:"rssIdleBytes"`
	LagOverTime  []lagPoint `json:"lagOverTime"`
	BurstTrials  int        `json:"burstTrials"`
	Burst        drain      `json:"burst"`
	// BurstJobs is the backlog's expiry jobs that ran, by River's
	// finalized_at. A sweep expires many trials at once and deletes their
	// jobs; those River held meanwhile run after it, answering
	// already_applied. The ratio takes transitions, as the target
	// defines it; BurstJobsDeleted and QueueEmptyAfterS say when the queue
	// was empty too: the last job's end after the last transition's (0 when
	// none ran later).
	BurstJobs        drain   `json:"burstJobs"`
	BurstJobsDeleted int     `json:"burstJobsDeleted"`
	QueueEmptyAfterS float64 `json:"queueEmptyAfterS"`
	// BurstDaemon is from the daemon's exec (River works before the API
	// listens) to the backlog's end.
	BurstDaemon          usage   `json:"burstDaemon"`
	TransitionsPerSecond float64 `json:"transitionsPerSecond"`
	// WindowProfile and BacklogProfile are CPU profiles of the daemon
	// around the window's middle and from the backlog daemon's ready, when
	// it serves pprof; Profile says what became of them.
	WindowProfile  *profile `json:"windowProfile,omitempty"`
	BacklogProfile *profile `json:"backlogProfile,omitempty"`
	Profile        string   `json:"profile"`
	// Emails, with -storm-emails, is the window's expiry notices as a
	// local SMTP server took them.
	Emails *emailFigures `json:"emails,omitempty"`
}

// emailFigures are a storm's expiry e-mails: how many the server took,
// from the first to the last, and the daemon's and Postgres's CPU for the
// ones sent after the last expiry (TailEmails), when nothing else ran.
type emailFigures struct {
	N          int     `json:"n"`
	SpanS      float64 `json:"spanS"`
	PerSecond  float64 `json:"perSecond"`
	TailEmails int     `json:"tailEmails"`
	Tail       usage   `json:"tail"`
	// CPUPerEmailUs is the tail's daemon + Postgres CPU per e-mail.
	CPUPerEmailUs float64 `json:"cpuPerEmailUs"`
}

func (r *StormReport) table() [][2]string {
	return [][2]string{
		{"river settings", r.River.String()},
		{"trials due within window", fmt.Sprintf("%d within %gs (%d expired, %d daemon(s))", r.Trials, r.WindowS, r.Expired, max(r.Replicas, 1))},
		{"sustained transitions/s", fmtRate(r.SustainedPerSecond, "/s")},
		{"lag (expired − due)", fmtDist(r.Lag)},
		{"neighbour's storm and lag", r.neighbour()},
		{"daemon CPU / peak RSS", fmt.Sprintf("%.1f s CPU, %.1f MB peak (idle before: %.1f MB)", r.Daemon.CPUSeconds, mb(r.Daemon.PeakRSSBytes), mb(r.RSSIdleBytes))},
		{"postgres CPU meanwhile", fmt.Sprintf("%.1f s", r.Daemon.PostgresCPUSeconds)},
		{"backlog drain", fmt.Sprintf("%d trials already due: %s over %.2fs", r.BurstTrials, fmtRate(r.Burst.PerSecond, "transitions/s"), r.Burst.SpanS)},
		{"backlog's expiry jobs", fmt.Sprintf("%d ran (%s over %.2fs), %d deleted by sweeps; queue empty %.2fs after the last transition",
			r.BurstJobs.Done, fmtRate(r.BurstJobs.PerSecond, "jobs/s"), r.BurstJobs.SpanS, r.BurstJobsDeleted, r.QueueEmptyAfterS)},
		{"backlog daemon CPU / postgres CPU", fmt.Sprintf("%.1f s / %.1f s, peak RSS %.1f MB", r.BurstDaemon.CPUSeconds, r.BurstDaemon.PostgresCPUSeconds, mb(r.BurstDaemon.PeakRSSBytes))},
		{"CPU profile", r.Profile},
		{"expiry e-mails", r.emails()},
	}
}

func (r *StormReport) emails() string {
	if r.Emails == nil {
		return "off (-storm-emails)"
	}
	e := r.Emails
	return fmt.Sprintf("%d to a local SMTP server over %.1fs: %s; after the last expiry %d, %.0f µs CPU each (daemon %.1f s + postgres %.1f s)",
		e.N, e.SpanS, fmtRate(e.PerSecond, "e-mails/s"), e.TailEmails, e.CPUPerEmailUs, e.Tail.CPUSeconds, e.Tail.PostgresCPUSeconds)
}

func (h *harness) runStorm(ctx context.Context) (report, error) {
	began := time.Now()
	rep := &StormReport{Meta: Meta{Scenario: ScenarioStorm, At: began}, Trials: h.opts.StormTrials,
		WindowS: h.opts.StormWindow.Seconds(), BurstTrials: h.opts.BurstTrials, Profile: profileUnavailable}
	if err := h.stormWindow(ctx, rep); err != nil {
		return nil, err
	}
	if err := h.stormBurst(ctx, rep); err != nil {
		return nil, err
	}
	rep.TransitionsPerSecond = rep.Burst.PerSecond
	if rep.WindowProfile != nil || rep.BacklogProfile != nil {
		rep.Profile = fmt.Sprintf("%ds CPU profiles: %s", h.opts.ProfileSeconds, joinNonEmpty(fileOf(rep.WindowProfile), fileOf(rep.BacklogProfile)))
	}
	rep.ElapsedS = round1(time.Since(began).Seconds())
	return rep, nil
}

func (r *StormReport) neighbour() string {
	if r.NeighbourTrials == 0 {
		return "none"
	}
	return fmt.Sprintf("%d trials on a database and daemon of their own: %s", r.NeighbourTrials, fmtDist(r.NeighbourLag))
}

// charts is the lag of trials by the second they fell due.
func (r *StormReport) charts() map[string]string {
	pts := r.LagOverTime
	return map[string]string{ScenarioStorm + ".svg": lagChart(
		fmt.Sprintf("trialsd: %d trials due within %gs", r.Trials, r.WindowS), "due time (s from the window's start)",
		[]chartSeries{
			seriesOf("max", "#d62728", pts, func(p lagPoint) float64 { return p.MaxMs }),
			seriesOf("p99", "#ff7f0e", pts, func(p lagPoint) float64 { return p.P99Ms }),
			seriesOf("p50", "#1f77b4", pts, func(p lagPoint) float64 { return p.P50Ms }),
		})}
}

// stormWindow loads trials due within the window, starts the daemon before
// the first is due and waits until the last has expired.
func (h *harness) stormWindow(ctx context.Context, rep *StormReport) (err error) {
	db, cfg, err := h.scenarioDB(ctx, ScenarioStorm, 8)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	rep.Database = db.Name
	rep.River = settingsOf(cfg)
	rep.Replicas = h.opts.StormReplicas
	adminID, err := createAdmin(ctx, db.Pool)
	if err != nil {
		return err
	}
	var sink *smtpSink
	var mailEnv []string
	if h.opts.StormEmails {
		if sink, err = startSMTPSink(); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, sink.close()) }()
		mailEnv = sink.env()
	}
	// The daemon runs before the trials exist, as in production, where
	// trials are started days before they fall due: River's scheduler and
	// leader election are warm when the window opens.
	d, pprofAddr, stop, err := h.startStormDaemons(ctx, db.URL, mailEnv)
	defer func() { err = errors.Join(err, stop()) }()
	if err != nil {
		return err
	}
	if u, err := readProc(d.Pid); err == nil {
		rep.RSSIdleBytes = u.RSS
	}
	lead := h.opts.StormLead
	if lead == 0 {
		lead = autoLead(h.opts.StormTrials + h.opts.StormNeighbourTrials)
	}
	from := domain.Instant(time.Now().Add(lead))
	loadBegan := time.Now()
	neighbour, err := h.startNeighbour(ctx, from)
	defer func() { err = errors.Join(err, neighbour.stop(ctx)) }()
	if err != nil {
		return err
	}
	l, err := loadTrials(ctx, db.Pool, trialLoad{N: h.opts.StormTrials, From: from, Window: h.opts.StormWindow, AdminID: adminID, Config: cfg})
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "storm loaded", "trials", h.opts.StormTrials, "took", time.Since(loadBegan).Round(time.Millisecond),
		"first_due_in", time.Until(from).Round(time.Millisecond))
	if time.Now().After(from) {
		return fmt.Errorf("the first trial fell due before loading ended: raise -storm-lead above %s", lead)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(from)):
	}
	s := startSampler(ctx, d.Pid, 100*time.Millisecond)
	// Profiled in the middle of the window, when the daemon is busiest.
	profiled := h.profileAsync(ctx, pprofAddr, "storm-window.pprof", max(0, h.opts.StormWindow/2-time.Duration(h.opts.ProfileSeconds)*time.Second/2))
	waitErr := waitUntil(ctx, h.opts.StormWindow+h.opts.Timeout, 250*time.Millisecond, "every trial to expire", allExpired(db.Pool, l))
	rep.Daemon = s.stop()
	rep.WindowProfile = <-profiled
	lags, err := readLags(ctx, db.Pool, l, from)
	if err != nil {
		return err
	}
	rep.recordLags(lags)
	rep.NeighbourTrials = h.opts.StormNeighbourTrials
	if rep.NeighbourLag, err = neighbour.finish(ctx, h); err != nil {
		return errors.Join(waitErr, err)
	}
	if waitErr == nil && sink != nil {
		rep.Emails, waitErr = h.drainEmails(ctx, db, d, sink)
	}
	return waitErr
}

// drainEmails waits, after the last expiry, until every notice is written
// and sent, and measures the e-mails.
func (h *harness) drainEmails(ctx context.Context, db *scratchDB, d *daemonProc, sink *smtpSink) (*emailFigures, error) {
	before, _, _ := sink.taken()
	s := startSampler(ctx, d.Pid, 100*time.Millisecond)
	err := waitUntil(ctx, h.opts.Timeout, 250*time.Millisecond, "every e-mail to be sent", func(ctx context.Context) (bool, error) {
		var owed int
		err := db.Pool.QueryRow(ctx, owedJobsSQL+` SELECT coalesce(sum(n), 0) FROM owed`).Scan(&owed)
		return owed == 0, err
	})
	tail := s.stop()
	if err != nil {
		return nil, errors.Join(err, owedJobs(ctx, db))
	}
	n, first, last := sink.taken()
	e := &emailFigures{N: n, SpanS: round3(last.Sub(first).Seconds()), TailEmails: n - before, Tail: tail}
	e.PerSecond = ratio(float64(n), e.SpanS)
	if e.TailEmails > 0 {
		e.CPUPerEmailUs = round1((tail.CPUSeconds + tail.PostgresCPUSeconds) * 1e6 / float64(e.TailEmails))
	}
	return e, nil
}

// startStormDaemons starts the profiled daemon and its replicas. stop stops
// every one that started, also when starting a later one failed.
func (h *harness) startStormDaemons(ctx context.Context, url string, extraEnv []string) (d *daemonProc, pprofAddr string, stop func() error, err error) {
	var started []*daemonProc
	stop = func() error {
		var errs []error
		for _, p := range started {
			errs = append(errs, p.stop())
		}
		return errors.Join(errs...)
	}
	pprofEnv, pprofAddr, err := profileEnv()
	if err != nil {
		return nil, "", stop, err
	}
	for i := 1; i <= max(1, h.opts.StormReplicas); i++ {
		name, env := ScenarioStorm, pprofEnv
		if i > 1 {
			name, env = fmt.Sprintf("%s-replica-%d", ScenarioStorm, i), nil
		}
		p, err := h.setup.start(ctx, url, name, false, append(slices.Clone(env), extraEnv...)...)
		if err != nil {
			return nil, "", stop, err
		}
		started = append(started, p)
	}
	return started[0], pprofAddr, stop, nil
}

// recordLags fills in the lag figures and the sustained rate, measured from
// the first due date (the window's start) to the last expiry.
func (r *StormReport) recordLags(lags []trialLag) {
	r.Expired = len(lags)
	r.Lag = distOf(lagValues(lags))
	r.LagOverTime = lagSeries(lags)
	var span float64
	for _, x := range lags {
		span = max(span, x.DueS+x.LagMs/1000)
	}
	if span > 0 {
		r.SustainedPerSecond = round1(float64(r.Expired) / span)
	}
}

// stormBurst loads trials that are all due already and measures how fast
// a freshly started daemon works the backlog off.
func (h *harness) stormBurst(ctx context.Context, rep *StormReport) (err error) {
	db, cfg, err := h.scenarioDB(ctx, "burst", 8)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	adminID, err := createAdmin(ctx, db.Pool)
	if err != nil {
		return err
	}
	l, err := loadTrials(ctx, db.Pool, trialLoad{N: h.opts.BurstTrials, From: time.Now().Add(-time.Second), AdminID: adminID, Config: cfg})
	if err != nil {
		return err
	}
	pprofEnv, pprofAddr, err := profileEnv()
	if err != nil {
		return err
	}
	d, err := h.setup.start(ctx, db.URL, "burst", true, pprofEnv...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.stop()) }()
	profiled := h.profileAsync(ctx, pprofAddr, "storm-backlog.pprof", 0)
	waitErr := waitUntil(ctx, h.opts.Timeout, 250*time.Millisecond, "the backlog to drain", allExpired(db.Pool, l))
	if waitErr == nil {
		waitErr = waitUntil(ctx, h.opts.Timeout, 250*time.Millisecond, "the backlog's expiry jobs to complete", jobsDone(db.Pool, jobargs.KindExpireTrial))
	}
	rep.BurstDaemon = d.Usage.stop()
	rep.BacklogProfile = <-profiled
	if rep.Burst, err = trialsDrain(ctx, db.Pool, l); err != nil {
		return err
	}
	if rep.BurstJobs, err = drainOf(ctx, db.Pool, `SELECT count(*)::int, min(finalized_at), max(finalized_at) FROM river_job
		WHERE kind = $1 AND finalized_at IS NOT NULL`, jobargs.KindExpireTrial); err != nil {
		return err
	}
	if waitErr == nil {
		rep.BurstJobsDeleted = h.opts.BurstTrials - rep.BurstJobs.Done
		err = db.Pool.QueryRow(ctx, `SELECT coalesce(greatest(0, extract(epoch FROM
			(SELECT max(finalized_at) FROM river_job WHERE kind = $1) - (SELECT max(expired_date) FROM trials))), 0)::float8`,
			jobargs.KindExpireTrial).Scan(&rep.QueueEmptyAfterS)
		rep.QueueEmptyAfterS = round3(rep.QueueEmptyAfterS)
	}
	return errors.Join(waitErr, err)
}

// owedJobsSQL counts the e-mail jobs due and not done, by kind and state:
// the notices of later dates (the deletion warnings, weeks away) are not
// the storm's.
const owedJobsSQL = `WITH owed AS (SELECT kind, state::text AS state, count(*) AS n FROM river_job
	WHERE kind IN ('trial.notify', 'outbox.deliver') AND state NOT IN ('completed', 'cancelled', 'discarded')
	AND scheduled_at <= now() GROUP BY kind, state)`

// owedJobs says which e-mail jobs a drain that timed out still waited for.
func owedJobs(ctx context.Context, db *scratchDB) error {
	rows, err := db.Pool.Query(ctx, owedJobsSQL+` SELECT kind, state, n FROM owed ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var owed []string
	for rows.Next() {
		var kind, state string
		var n int
		if err := rows.Scan(&kind, &state, &n); err != nil {
			return err
		}
		owed = append(owed, fmt.Sprintf("%d %s %s", n, state, kind))
	}
	return fmt.Errorf("still owed: %v", owed)
}
