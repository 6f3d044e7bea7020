package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// intakeBody is what each intake request sends: a self-service trial with
// the descriptive fields a sign-up form fills in.
const intakeBody = `{"organizationName":"Intake Org","useCase":"benchmark"}`

// IntakeReport is scenario 4: concurrent POST /v1/api/user/trial against
// the same inserts run by pgbench on the same database.
type IntakeReport struct {
	Meta
	River     riverSettings `json:"river"`
	Clients   int           `json:"clients"`
	DurationS float64       `json:"durationS"`
	Requests  int64         `json:"requests"`
	OK        int64         `json:"ok"`
	Failed    int64         `json:"failed"`
	// FirstFailure is the status and body of the first failed request.
	FirstFailure string `json:"firstFailure,omitempty"`
	// UsersExhausted: the run stopped early for want of fresh users.
	UsersExhausted bool    `json:"usersExhausted"`
	RequestsPerSec float64 `json:"requestsPerSecond"`
	Latency        Dist    `json:"latency"`
	Daemon         usage   `json:"daemon"`
	Pgbench        pgbench `json:"pgbench"`
	Ratio          float64 `json:"ratio"`
	Target         float64 `json:"target"`
}

func (r *IntakeReport) table() [][2]string {
	return [][2]string{
		{"HTTP clients / duration", fmt.Sprintf("%d / %gs", r.Clients, r.DurationS)},
		{"POST /v1/api/user/trial", fmt.Sprintf("%s (%d ok, %d failed%s)", fmtRate(r.RequestsPerSec, "req/s"), r.OK, r.Failed, map[bool]string{true: ", users exhausted"}[r.UsersExhausted])},
		{"latency", fmtDist(r.Latency)},
		{"daemon / postgres CPU", fmt.Sprintf("%.1f s / %.1f s, peak RSS %.1f MB", r.Daemon.CPUSeconds, r.Daemon.PostgresCPUSeconds, mb(r.Daemon.PeakRSSBytes))},
		{"pgbench, same inserts", fmt.Sprintf("%s, latency avg %.2fms (%d transactions, %d clients)", fmtRate(r.Pgbench.TPS, "tps"), r.Pgbench.LatencyAvgMs, r.Pgbench.Transactions, r.Pgbench.Clients)},
		{"ratio req/s ÷ pgbench tps", fmt.Sprintf("%.3f (target ≥ %.1f)", r.Ratio, r.Target)},
	}
}

func (h *harness) runIntake(ctx context.Context) (_ report, err error) {
	began := time.Now()
	rep := &IntakeReport{Meta: Meta{Scenario: ScenarioIntake, At: began}, Clients: h.opts.IntakeClients,
		DurationS: h.opts.IntakeDuration.Seconds(), Target: 0.6}
	db, cfg, err := h.scenarioDB(ctx, ScenarioIntake, 4)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	rep.Database = db.Name
	rep.River = settingsOf(cfg)
	httpUsers, err := loadAPIUsers(ctx, db.Pool, h.opts.IntakeUsers, "intake")
	if err != nil {
		return nil, err
	}
	pgbenchUsers, err := loadAPIUsers(ctx, db.Pool, h.opts.IntakeUsers, "pgbench")
	if err != nil {
		return nil, err
	}
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return nil, fmt.Errorf("analyzing intake database: %w", err)
	}

	d, err := h.setup.start(ctx, db.URL, ScenarioIntake, false)
	if err != nil {
		return nil, err
	}
	s := startSampler(ctx, d.Pid, 100*time.Millisecond)
	lat := h.postTrials(ctx, d.BaseURL, httpUsers, rep)
	rep.Daemon = s.stop()
	if err := d.stop(); err != nil {
		return nil, err
	}
	rep.Latency = distOf(lat)
	rep.RequestsPerSec = round1(float64(rep.OK) / h.opts.IntakeDuration.Seconds())
	if rep.OK == 0 {
		return nil, fmt.Errorf("no intake request succeeded: %s", rep.FirstFailure)
	}

	rep.Pgbench, err = runPgbench(ctx, pgbenchRun{Bin: h.opts.Pgbench, DB: db, Cfg: cfg, Users: pgbenchUsers,
		Clients: h.opts.IntakeClients, Duration: h.opts.IntakeDuration, Dir: h.opts.OutDir})
	if err != nil {
		return nil, err
	}
	rep.Ratio = ratio(rep.RequestsPerSec, rep.Pgbench.TPS)
	rep.ElapsedS = round1(time.Since(began).Seconds())
	return rep, nil
}

// postTrials has IntakeClients clients start trials, each request as a user
// that has none yet, for IntakeDuration, and returns the latencies (ms) of
// the successful requests.
func (h *harness) postTrials(ctx context.Context, baseURL string, users []apiUser, rep *IntakeReport) []float64 {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: h.opts.IntakeClients, MaxIdleConnsPerHost: h.opts.IntakeClients,
	}}
	defer client.CloseIdleConnections()
	var next, requests, ok, failed atomic.Int64
	var mu sync.Mutex
	var all []float64
	deadline := time.Now().Add(h.opts.IntakeDuration)
	var wg sync.WaitGroup
	for range h.opts.IntakeClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []float64
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(users)) {
					mu.Lock()
					rep.UsersExhausted = true
					mu.Unlock()
					break
				}
				requests.Add(1)
				began := time.Now()
				status, body, err := postTrial(ctx, client, baseURL, users[i].Key)
				took := time.Since(began)
				if err == nil && status == http.StatusOK {
					ok.Add(1)
					mine = append(mine, ms(took))
					continue
				}
				failed.Add(1)
				mu.Lock()
				if rep.FirstFailure == "" {
					rep.FirstFailure = fmt.Sprintf("status %d, error %v: %s", status, err, body)
				}
				mu.Unlock()
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rep.Requests, rep.OK, rep.Failed = requests.Load(), ok.Load(), failed.Load()
	return all
}

func postTrial(ctx context.Context, client *http.Client, baseURL, key string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/api/user/trial", bytes.NewReader([]byte(intakeBody)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body), err
}
