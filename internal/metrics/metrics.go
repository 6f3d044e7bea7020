// Package metrics defines trialsd's Prometheus metrics. The trial gauges are
// read from the database's counters when scraped (cached for a second) and
// the job gauges refreshed in the background, so every replica reports the
// same truth; the counters count what this process saw commit, and every
// one of their known label values exists at 0 from the start.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and every metric trialsd exports.
type Metrics struct {
	registry      *prometheus.Registry
	trialGauges   *trialGauges
	ending        *prometheus.GaugeVec
	deletions     *prometheus.GaugeVec
	refreshErrors prometheus.Counter
	transitions   *prometheus.CounterVec
	lag           *prometheus.HistogramVec
	repairs       *prometheus.CounterVec
	outbox        *prometheus.CounterVec
	emails        *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	unpaid        prometheus.Counter

	started       *prometheus.CounterVec
	converted     *prometheus.CounterVec
	changes       *prometheus.CounterVec
	timeToConvert *prometheus.HistogramVec

	jobsWorked      *prometheus.CounterVec
	jobDuration     *prometheus.HistogramVec
	jobs            *prometheus.GaugeVec
	oldestAvailable *prometheus.GaugeVec
	leader          prometheus.Gauge
	workers         prometheus.Gauge
	queueErrors     prometheus.Counter

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge
	signups      *prometheus.CounterVec
	ready        prometheus.Gauge

	// collectors are ours, for Names.
	collectors []prometheus.Collector
}

// New registers trialsd's metrics, with the Go runtime and process collectors,
// on a registry of its own.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	// Defined by what they watch, each group short enough to read whole.
	m.defineTrialMetrics()
	m.defineGrowthMetrics()
	m.defineJobMetrics()
	m.defineHTTPMetrics()
	m.startAtZero()
	m.collectors = []prometheus.Collector{
		m.jobsWorked, m.jobDuration, m.jobs, m.oldestAvailable, m.leader, m.workers, m.queueErrors,
		m.httpRequests, m.httpDuration, m.httpInFlight, m.signups, m.ready,
		m.trialGauges, m.ending, m.deletions, m.refreshErrors, m.transitions, m.lag, m.repairs, m.outbox, m.emails, m.refusals, m.unpaid,
		m.started, m.converted, m.changes, m.timeToConvert,
	}
	m.registry.MustRegister(m.collectors...)
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// defineTrialMetrics creates the lifecycle's metrics: the trial gauges,
// transitions, repairs, deliveries and removed sign-ups.
func (m *Metrics) defineTrialMetrics() {
	m.refreshErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "trialsd_trial_state_refresh_errors_total",
		Help: "Failed reads of the trial gauges (trialsd_trials when scraped, trialsd_trials_ending and trialsd_trial_deletions_due when refreshed); they serve their last values meanwhile.",
	})
	m.trialGauges = newTrialGauges(m.refreshErrors)
	m.ending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trialsd_trials_ending",
		Help: "Active trials whose expiration date falls within the window (24h, 7d, 30d), overdue ones included; refreshed from the database every metrics.refresh_interval; per database: take max across replicas.",
	}, []string{"within"})
	m.deletions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trialsd_trial_deletions_due",
		Help: "Expired trials whose grace period ends within the window (7d), when their organization is deleted; refreshed from the database every metrics.refresh_interval; per database: take max across replicas.",
	}, []string{"within"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_transitions_total",
		Help: "Lifecycle transitions by kind and outcome (applied; already_applied: the job found its transition done by another job's batch or its own earlier attempt; skipped: no longer due; failed).",
	}, []string{"kind", "outcome"})
	m.lag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trialsd_transition_lag_seconds",
		Help:    "Time from when a transition was due to when it was applied.",
		Buckets: prometheus.ExponentialBucketsRange(0.05, 3600, 16),
	}, []string{"kind"})
	m.repairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_reconcile_repairs_total",
		Help: "Transition jobs the reconciler found missing and re-enqueued, by job kind.",
	}, []string{"kind"})
	m.outbox = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_outbox_deliveries_total",
		Help: "Delivery attempts of webhooks and e-mails by channel and outcome (delivered; logged: the log sender wrote an e-mail to the log, delivered to nobody; retrying; failed: no attempt left; skipped: already delivered).",
	}, []string{"channel", "outcome"})
	m.emails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_emails_total",
		Help: "Trial notice e-mails (welcome, ending, expired, deletion_warning, deleted, upgraded) by template and outcome: delivered (the relay took it), logged (email.sender is log), failed (refused, or no attempt left).",
	}, []string{"template", "outcome"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_trial_refusals_total",
		Help: "Trial starts the eligibility rules refused, by reason: address_used (the address had its trial), domain_active, domain_limit (the company domain's limits), disposable.",
	}, []string{"reason"})
	m.unpaid = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "trialsd_unpaid_signups_removed_total",
		Help: "Professional sign-ups removed for not paying within billing.pending_payment_ttl.",
	})
}

// defineJobMetrics creates River's metrics: the jobs this process worked and
// the queues' state.
func (m *Metrics) defineJobMetrics() {
	m.jobsWorked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_jobs_worked_total",
		Help: "River jobs worked by this process, by kind and outcome (completed, snoozed, cancelled, failed).",
	}, []string{"kind", "outcome"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trialsd_job_duration_seconds",
		Help:    "Time spent working River jobs, by kind.",
		Buckets: prometheus.ExponentialBucketsRange(0.001, 60, 14),
	}, []string{"kind"})
	m.jobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trialsd_jobs",
		Help: "River jobs by queue and state (completed and cancelled left out), refreshed from the database.",
	}, []string{"queue", "state"})
	m.oldestAvailable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trialsd_job_oldest_available_age_seconds",
		Help: "How long the oldest due job of each queue has waited for a worker (0 when none waits).",
	}, []string{"queue"})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trialsd_river_leader_elected",
		Help: "1 while a River client holds leadership (read from river_leader); without one no scheduled job is promoted.",
	})
	m.workers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trialsd_workers_enabled",
		Help: "1 when this process works River's queues (serve without --api-only), 0 otherwise: summed across replicas, how many work jobs.",
	})
	m.queueErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "trialsd_queue_stats_refresh_errors_total",
		Help: "Failed refreshes of the job gauges; they keep their last values meanwhile.",
	})
}

// defineHTTPMetrics creates the HTTP edge's metrics: requests, readiness and
// sign-ups.
func (m *Metrics) defineHTTPMetrics() {
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_http_requests_total",
		Help: "HTTP requests by route pattern, method and status.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trialsd_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern and method.",
		Buckets: prometheus.ExponentialBucketsRange(0.001, 10, 14),
	}, []string{"route", "method"})
	m.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trialsd_http_requests_in_flight",
		Help: "HTTP requests being served.",
	})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trialsd_ready",
		Help: "1 while /readyz would answer 200 (database reachable, migrations current).",
	})
	m.signups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trialsd_signups_total",
		Help: "Public sign-ups by kind (enterprise_trial, professional) and outcome.",
	}, []string{"kind", "outcome"})
}

// SetWorkersEnabled says whether this process works River's queues.
func (m *Metrics) SetWorkersEnabled(enabled bool) {
	v := 0.0
	if enabled {
		v = 1
	}
	m.workers.Set(v)
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Transition records one transition job: its outcome and, when applied, how
// late it was.
func (m *Metrics) Transition(kind, outcome string, lag time.Duration) {
	m.transitions.WithLabelValues(kind, outcome).Inc()
	if outcome == "applied" {
		m.lag.WithLabelValues(kind).Observe(max(lag, 0).Seconds())
	}
}

// Repaired counts jobs the reconciler re-enqueued.
func (m *Metrics) Repaired(kind string, n int) {
	m.repairs.WithLabelValues(kind).Add(float64(n))
}

// OutboxDelivery counts one delivery attempt.
func (m *Metrics) OutboxDelivery(channel, outcome string) {
	m.outbox.WithLabelValues(channel, outcome).Inc()
}

// Email counts one trial notice e-mail sent or failed for good.
func (m *Metrics) Email(template, outcome string) {
	m.emails.WithLabelValues(template, outcome).Inc()
}

// TrialRefused counts one trial start the eligibility rules refused.
func (m *Metrics) TrialRefused(reason string) {
	m.refusals.WithLabelValues(reason).Inc()
}

// UnpaidSignupsRemoved counts removed unpaid sign-ups.
func (m *Metrics) UnpaidSignupsRemoved(n int) { m.unpaid.Add(float64(n)) }

// Sources are where the refreshed database-backed gauges come from
// (trialsd_trials is read when scraped: ReadTrialsFrom).
type Sources struct {
	Queues QueueReader
	// Upcoming, when set, reads the look-ahead trial gauges.
	Upcoming UpcomingReader
	// Ready reports why the daemon cannot serve, or nil.
	Ready func(ctx context.Context) error
}

// RunRefresher refreshes the database-backed gauges every interval until
// ctx ends.
func (m *Metrics) RunRefresher(ctx context.Context, interval time.Duration, src Sources, logger *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		m.Refresh(ctx, src, logger)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Refresh recomputes every database-backed gauge now.
func (m *Metrics) Refresh(ctx context.Context, src Sources, logger *slog.Logger) {
	ready := 1.0
	if err := src.Ready(ctx); err != nil {
		ready = 0
	}
	m.ready.Set(ready)
	if src.Upcoming != nil {
		if u, err := src.Upcoming(ctx); err != nil {
			m.refreshErrors.Inc()
			if ctx.Err() == nil {
				logger.WarnContext(ctx, "refreshing the trial look-ahead gauges failed; they keep their last values", "error", err)
			}
		} else {
			m.RefreshUpcoming(u)
		}
	}
	stats, err := src.Queues(ctx)
	if err != nil {
		m.queueErrors.Inc()
		if ctx.Err() == nil {
			logger.WarnContext(ctx, "refreshing job metrics failed", "error", err)
		}
		return
	}
	m.RefreshQueues(stats)
}

// Names lists the name of every metric family the registry exports, so the
// shipped dashboard and alerts can be checked against it.
func (m *Metrics) Names() []string {
	families, _ := m.registry.Gather()
	names := make([]string, 0, len(families)+len(m.collectors))
	for _, f := range families {
		names = append(names, f.GetName())
	}
	for _, c := range m.collectors {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if match := fqName.FindStringSubmatch(d.String()); match != nil {
				names = append(names, match[1])
			}
		}
	}
	return names
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// WatchTransactionAborts exports trialsd_transaction_aborts_total{sqlstate}:
// the transactions Postgres aborted with a deadlock (40P01) or a
// serialization failure (40001), which the store retries. abortsSoFar is
// read at each scrape; with the lock order kept both stay at zero.
func (m *Metrics) WatchTransactionAborts(abortsSoFar func() (deadlocks, serialization int64)) {
	for code, pick := range map[string]func() int64{
		"40P01": func() int64 { d, _ := abortsSoFar(); return d },
		"40001": func() int64 { _, s := abortsSoFar(); return s },
	} {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "trialsd_transaction_aborts_total",
			Help:        "Transactions Postgres aborted with a deadlock (40P01) or a serialization failure (40001); each is retried a bounded number of times.",
			ConstLabels: prometheus.Labels{"sqlstate": code},
		}, func() float64 { return float64(pick()) }))
	}
}
