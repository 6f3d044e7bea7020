package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ScaleReport is scenario 5: trialsd on a big table.
type ScaleReport struct {
	Meta
	River  riverSettings `json:"river"`
	Trials int           `json:"trials"`
	LoadS  float64       `json:"loadS"`
	// ListTrialsCold is GET /v1/api/users/{id}/trials (as the admin) for
	// random users, one request at a time, right after the load: what the
	// disk serves of pages the load's writes pushed out of the page cache.
	ListTrialsCold Dist `json:"listTrialsCold"`
	// ListTrials is the same once the tables it reads are in the page
	// cache (pg_prewarm), as a serving database's are: the target's
	// figure.
	ListTrials Dist `json:"listTrials"`
	// WarmS is how long reading those tables into the page cache took.
	WarmS float64 `json:"warmS"`
	// Metrics is GET /metrics.
	Metrics Dist `json:"metrics"`
	// ReconcileS is the wall time of `trialsd trials reconcile` (a whole
	// process: start, connect, sweep, exit); ReconcileOutput what it said.
	ReconcileS      float64 `json:"reconcileS"`
	ReconcileOutput string  `json:"reconcileOutput"`
	StormTrials     int     `json:"stormTrials"`
	// StormBig is the backlog drain of StormTrials due now on top of the
	// big table; StormSmall the same on an empty one, in this run.
	StormBig   drain   `json:"stormBig"`
	StormSmall drain   `json:"stormSmall"`
	StormRatio float64 `json:"stormRatio"`
}

func (r *ScaleReport) table() [][2]string {
	return [][2]string{
		{"trials (and scheduled jobs)", fmt.Sprintf("%d, loaded with COPY in %.1fs", r.Trials, r.LoadS)},
		{"list trials of a user, cold after the load", fmtDist(r.ListTrialsCold)},
		{"list trials of a user, tables in the page cache", fmtDist(r.ListTrials) + fmt.Sprintf(" (target p99 ≤ 5ms; warmed in %.1fs)", r.WarmS)},
		{"/metrics scrape", fmtDist(r.Metrics) + " (target ≤ 100ms)"},
		{"trialsd trials reconcile", fmt.Sprintf("%.2fs wall (whole process)", r.ReconcileS)},
		{"backlog drain on the big table", fmt.Sprintf("%d trials: %s", r.StormTrials, fmtRate(r.StormBig.PerSecond, "transitions/s"))},
		{"backlog drain on an empty table", fmt.Sprintf("%d trials: %s", r.StormTrials, fmtRate(r.StormSmall.PerSecond, "transitions/s"))},
		{"storm ratio big ÷ small", fmt.Sprintf("%.3f (target ≥ 0.8)", r.StormRatio)},
	}
}

func (h *harness) runScale(ctx context.Context) (_ report, err error) {
	began := time.Now()
	rep := &ScaleReport{Meta: Meta{Scenario: ScenarioScale, At: began}, Trials: h.opts.ScaleTrials, StormTrials: h.opts.ScaleStormTrials}
	if rep.StormSmall, err = h.backlogOnFreshDB(ctx); err != nil {
		return nil, err
	}
	db, cfg, err := h.scenarioDB(ctx, ScenarioScale, 4)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	rep.Database = db.Name
	rep.River = settingsOf(cfg)
	adminID, err := createAdmin(ctx, db.Pool)
	if err != nil {
		return nil, err
	}
	// Spread over the two weeks ahead, as trials of a steady intake are,
	// the first due 10 minutes after the load ends: none is due while the
	// read paths are timed (at 10M, a lead from the load's start left
	// ~3,000 due when the daemon started, a backlog beside the timed
	// requests). The reconciler's horizon sees the first hour's share.
	loadBegan := time.Now()
	big, err := loadTrials(ctx, db.Pool, trialLoad{N: h.opts.ScaleTrials, From: time.Now().Add(loadLead(h.opts.ScaleTrials) + 10*time.Minute),
		Window: 14 * 24 * time.Hour, AdminID: adminID, Config: cfg})
	if err != nil {
		return nil, err
	}
	// Analyzed, as autovacuum would have done long before, and
	// checkpointed: the load's gigabytes of dirty pages are written now,
	// not by the checkpointer while the read paths are timed.
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return nil, fmt.Errorf("analyzing: %w", err)
	}
	if _, err := db.Pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return nil, fmt.Errorf("checkpointing: %w", err)
	}
	rep.LoadS = round1(time.Since(loadBegan).Seconds())
	h.log.InfoContext(ctx, "scale loaded", "trials", h.opts.ScaleTrials, "took", time.Since(loadBegan).Round(time.Second))

	d, err := h.setup.start(ctx, db.URL, ScenarioScale, false)
	if err != nil {
		return nil, err
	}
	if err := h.probeBigTable(ctx, d, db.Pool, big, rep); err != nil {
		return nil, errors.Join(err, d.stop())
	}
	if err := d.stop(); err != nil {
		return nil, err
	}
	reconcileBegan := time.Now()
	out, err := h.setup.runCLI(ctx, db.URL, "trials", "reconcile")
	if err != nil {
		return nil, err
	}
	rep.ReconcileS = round3(time.Since(reconcileBegan).Seconds())
	rep.ReconcileOutput = out

	// The storm on top: trials already due, a daemon started on them.
	l, err := loadTrials(ctx, db.Pool, trialLoad{N: h.opts.ScaleStormTrials, From: time.Now().Add(-time.Second), AdminID: adminID, Config: cfg})
	if err != nil {
		return nil, err
	}
	if rep.StormBig, err = h.drainBacklog(ctx, db, l, "scale-storm"); err != nil {
		return nil, err
	}
	rep.StormRatio = ratio(rep.StormBig.PerSecond, rep.StormSmall.PerSecond)
	rep.ElapsedS = round1(time.Since(began).Seconds())
	return rep, nil
}

// backlogOnFreshDB is the scale storm's reference: the same backlog on an
// empty database.
func (h *harness) backlogOnFreshDB(ctx context.Context) (_ drain, err error) {
	db, cfg, err := h.scenarioDB(ctx, "scalesmall", 4)
	if err != nil {
		return drain{}, err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	adminID, err := createAdmin(ctx, db.Pool)
	if err != nil {
		return drain{}, err
	}
	l, err := loadTrials(ctx, db.Pool, trialLoad{N: h.opts.ScaleStormTrials, From: time.Now().Add(-time.Second), AdminID: adminID, Config: cfg})
	if err != nil {
		return drain{}, err
	}
	return h.drainBacklog(ctx, db, l, "scale-small")
}

// drainBacklog starts a daemon on db and waits until the trials of l, all
// due already, have expired.
func (h *harness) drainBacklog(ctx context.Context, db *scratchDB, l loaded, name string) (_ drain, err error) {
	d, err := h.setup.start(ctx, db.URL, name, false)
	if err != nil {
		return drain{}, err
	}
	defer func() { err = errors.Join(err, d.stop()) }()
	if err := waitUntil(ctx, h.opts.Timeout, 250*time.Millisecond, "the backlog to drain", allExpired(db.Pool, l)); err != nil {
		return drain{}, err
	}
	return trialsDrain(ctx, db.Pool, l)
}

// probeBigTable times the read paths that grow with the table.
func (h *harness) probeBigTable(ctx context.Context, d *daemonProc, pool *pgxpool.Pool, big loaded, rep *ScaleReport) error {
	client := &http.Client{Timeout: 30 * time.Second}
	token, err := login(ctx, client, d.BaseURL)
	if err != nil {
		return err
	}
	list := func() (Dist, error) {
		var took []float64
		for range h.opts.ScaleListRequests {
			user := big.FirstUserID + rand.Int64N(int64(h.opts.ScaleTrials))
			ms, err := timedGet(ctx, client, fmt.Sprintf("%s/v1/api/users/%d/trials", d.BaseURL, user), token)
			if err != nil {
				return Dist{}, err
			}
			took = append(took, ms)
		}
		return distOf(took), nil
	}
	if rep.ListTrialsCold, err = list(); err != nil {
		return err
	}
	warmBegan := time.Now()
	if err := warmListTables(ctx, pool); err != nil {
		return err
	}
	rep.WarmS = round1(time.Since(warmBegan).Seconds())
	if rep.ListTrials, err = list(); err != nil {
		return err
	}
	var scrapes []float64
	for range h.opts.ScaleScrapes {
		took, err := timedGet(ctx, client, d.BaseURL+"/metrics", "")
		if err != nil {
			return err
		}
		scrapes = append(scrapes, took)
	}
	rep.Metrics = distOf(scrapes)
	return nil
}

// warmListTables reads the table a user's trial list reads (trials; the
// admin's own user row is hot anyway), and its indexes, into the kernel's
// page cache (pg_prewarm's read mode, past
// shared_buffers): the state of a database that has served for a while,
// whose lookups find those pages in memory, rather than of one whose bulk
// load has just pushed them out.
func warmListTables(ctx context.Context, pool *pgxpool.Pool) error {
	const warm = `
SELECT count(pg_prewarm(c.oid, 'read'))
FROM pg_class c
WHERE c.relkind IN ('r', 'i') AND (c.oid = ANY($1::regclass[])
    OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY($1::regclass[])))`
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_prewarm`); err != nil {
		return fmt.Errorf("pg_prewarm (postgresql-contrib): %w", err)
	}
	if _, err := pool.Exec(ctx, warm, []string{"trials"}); err != nil {
		return fmt.Errorf("warming the list's tables: %w", err)
	}
	return nil
}

// login returns a JWT of the bench admin (the list endpoint takes no API key).
func login(ctx context.Context, client *http.Client, baseURL string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": adminUsername, "password": adminPassword})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/api-login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("logging in: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Success bool   `json:"success"`
		Token   string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || !out.Success || out.Token == "" {
		return "", fmt.Errorf("logging in: status %d, %v", resp.StatusCode, err)
	}
	return out.Token, nil
}

// timedGet fetches url (with a JWT when token is set), reads the whole
// answer and returns how long that took, in ms; anything but 200 is an error.
func timedGet(ctx context.Context, client *http.Client, url, token string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("x-jwt-token", token)
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := ms(time.Since(began))
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: status %d, %v: %.200s", url, resp.StatusCode, err, body)
	}
	return took, nil
}
