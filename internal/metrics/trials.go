package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trialsd/trialsd/internal/domain"
)

// changeKinds are the events trialsd_trial_changes_total counts, by their
// label: every change of a trial's life besides its start and its
// conversion, which have counters of their own.
var changeKinds = map[string]string{
	domain.EventExpired: "expired", domain.EventExtended: "extended", domain.EventShortened: "shortened",
	domain.EventDeleted: "deleted", domain.EventRestored: "restored", domain.EventPurged: "purged",
}

// convertedFrom are the states a trial converts from: active (before its
// date) or expired (in its grace period).
var convertedFrom = []domain.State{domain.StateActive, domain.StateExpired}

// defineGrowthMetrics creates the counters of what happened to trials, as
// the lifecycle reports each change once it committed. Every label value is
// known, so each series exists at 0 from the start: rate() and increase()
// then see the first event, and see it again after a restart.
func (m *Metrics) defineGrowthMetrics() {
	m.started = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_trials_started_total",
		Help: "Trials started, by source (self_service, enterprise_signup, admin), counted when the start committed.",
	}, []string{"source"})
	m.converted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_trials_converted_total",
		Help: "Trials upgraded to a full enterprise account, by path (admin, enterprise, payment) and the state they converted from (active, expired).",
	}, []string{"path", "from_state"})
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_trial_changes_total",
		Help: "Committed trial changes by kind (expired, extended, shortened, deleted, restored, purged), whether a job or a request made them.",
	}, []string{"kind"})
	m.timeToConvert = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trialsd_trial_time_to_convert_seconds",
		Help:    "Time from a trial's start to its conversion, by path.",
		Buckets: []float64{3600, 6 * 3600, 86400, 2 * 86400, 3 * 86400, 5 * 86400, 7 * 86400, 10 * 86400, 14 * 86400, 21 * 86400, 30 * 86400, 45 * 86400, 60 * 86400, 90 * 86400},
	}, []string{"path"})
	for _, s := range domain.TrialSources {
		m.started.WithLabelValues(string(s))
	}
	for _, p := range domain.ConversionPaths {
		m.timeToConvert.WithLabelValues(string(p))
		for _, from := range convertedFrom {
			m.converted.WithLabelValues(string(p), string(from))
		}
	}
	for _, kind := range changeKinds {
		m.changes.WithLabelValues(kind)
	}
}

// TrialChanged counts one committed event of a trial's life; the lifecycle
// calls it only after the change's transaction committed.
func (m *Metrics) TrialChanged(ev domain.Committed) {
	switch ev.Event.Kind {
	case domain.EventCreated:
		m.started.WithLabelValues(string(ev.Source)).Inc()
	case domain.EventUpgraded:
		m.converted.WithLabelValues(string(ev.Path), string(ev.From)).Inc()
		m.timeToConvert.WithLabelValues(string(ev.Path)).Observe(max(ev.Age, 0).Seconds())
	default:
		if kind, ok := changeKinds[ev.Event.Kind]; ok {
			m.changes.WithLabelValues(kind).Inc()
		}
	}
}

// TrialFigures are the database's figures behind trialsd_trials, read
// when scraped: the trials in each state (with "purged", the trials purged
// so far), from the counters the trials' triggers keep.
type TrialFigures struct {
	ByState map[domain.State]int64
}

// Upcoming are the database's figures behind the look-ahead gauges, read
// by the refresher: the active trials ending within each of EndingWindows,
// and the deletions due within DeletionWindow. They come from counters by
// due date that the trials' triggers keep (migration 00014), a few
// milliseconds at any size; the refresher keeps them off the scrape, which
// stays one read of the state counters.
type Upcoming struct {
	EndingWithin map[string]int64
	DeletionsDue int64
}

// UpcomingReader reads Upcoming.
type UpcomingReader func(ctx context.Context) (Upcoming, error)

// RefreshUpcoming sets the look-ahead gauges from u: every window reads 0
// when u has no count for it.
func (m *Metrics) RefreshUpcoming(u Upcoming) {
	for _, w := range EndingWindows {
		m.ending.WithLabelValues(w.Label).Set(float64(u.EndingWithin[w.Label]))
	}
	m.deletions.WithLabelValues(DeletionWindow.Label).Set(float64(u.DeletionsDue))
}

// Window is a look-ahead of a gauge, by its label.
type Window struct {
	Label  string
	Length time.Duration
}

// EndingWindows are the look-aheads of trialsd_trials_ending.
var EndingWindows = []Window{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// DeletionWindow is the look-ahead of trialsd_trial_deletions_due.
var DeletionWindow = Window{"7d", 7 * 24 * time.Hour}

// TrialReader reads TrialFigures from the database.
type TrialReader func(ctx context.Context) (TrialFigures, error)

// trialGauges reads trialsd_trials from the database when scraped, so it
// is as fresh as the scrape, and keeps the figures for ttl, so
// several scrapers (or replicas' dashboards) within it cost one read. A
// failed read serves the last figures and counts the failure.
type trialGauges struct {
	read     TrialReader
	logger   *slog.Logger
	ttl      time.Duration
	failures prometheus.Counter

	mu   sync.Mutex
	at   time.Time // when last was read; zero: read again
	have bool      // last holds figures once read
	last TrialFigures

	byState *prometheus.Desc
}

func newTrialGauges(failures prometheus.Counter) *trialGauges {
	return &trialGauges{
		ttl: time.Second, failures: failures,
		byState: prometheus.NewDesc("trialsd_trials",
			"Trials by state (active, expired, deleted, upgraded) and the trials purged so far (purged), read from the database's counters when scraped: the same on every replica, so take max, not sum, across them.",
			[]string{"state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *trialGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.byState
}

// Collect implements prometheus.Collector: nothing until a reader is set.
func (g *trialGauges) Collect(ch chan<- prometheus.Metric) {
	f, ok := g.figures()
	if !ok {
		return
	}
	for state, n := range f.ByState {
		ch <- prometheus.MustNewConstMetric(g.byState, prometheus.GaugeValue, float64(n), string(state))
	}
}

// figures are the last figures read within ttl, or fresh ones.
func (g *trialGauges) figures() (TrialFigures, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.read == nil {
		return TrialFigures{}, false
	}
	if g.have && time.Since(g.at) < g.ttl {
		return g.last, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := g.read(ctx)
	if err != nil {
		// Tried again after ttl too: a database away is not asked at
		// every scrape of every scraper.
		g.at = time.Now()
		g.failures.Inc()
		g.logger.WarnContext(ctx, "reading trial gauges failed; serving the last figures", "error", err)
		return g.last, g.have
	}
	g.at, g.last, g.have = time.Now(), f, true
	return f, true
}

// ReadTrialsFrom makes the trial gauges read from read, when scraped.
func (m *Metrics) ReadTrialsFrom(read TrialReader, logger *slog.Logger) {
	m.trialGauges.mu.Lock()
	defer m.trialGauges.mu.Unlock()
	m.trialGauges.read, m.trialGauges.logger = read, logger
}
