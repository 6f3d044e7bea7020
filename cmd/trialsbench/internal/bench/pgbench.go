package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/store"
)

// pgbench is what pgbench measured running the intake's inserts.
type pgbench struct {
	Clients      int     `json:"clients"`
	TPS          float64 `json:"tps"`
	LatencyAvgMs float64 `json:"latencyAvgMs"`
	Transactions int64   `json:"transactions"`
	Script       string  `json:"script"`
}

// pgbenchJobs is the table of River job rows the script inserts: River's
// rows for the trial each transaction creates, planned by planPgbenchJobs.
const pgbenchJobs = "trialsbench_pgbench_job"

// pgbenchScript is one intake request as SQL, statement for statement what
// the daemon sends for POST /v1/api/user/trial by a user with an API key:
// the key lookup, the user's lock, the eligibility checks of the user's
// company domain (each intake user has one of its own), the organization,
// the membership, the trial, its eligibility history, its trial.created
// event, its reminder and expiry jobs and the
// trial's job ids. Each transaction takes the next fresh user from a
// sequence, as each HTTP request does.
//
// trialsd's statements are the store's own, read from its queries
// (store.Query) with pgbench expressions for their parameters, so the
// script runs what the store runs. The key lookup takes the user's key
// hash by a subquery, a lookup the daemon does not make (it hashes the
// key it was sent). River's statements are not restated: a job row is
// River's own, copied whole from the rows River wrote ahead of the run for
// the trial id the transaction draws, so the script never restates River's
// columns, args encoding or unique-key formula. Each job insert reads its
// row from pgbenchJobs by primary key, another lookup the daemon does not
// make; it writes the same river_job row, index entries and all.
func pgbenchScript(cfg *config.Config) (string, error) {
	length := fmt.Sprintf("now() + interval '%d seconds'", int64(cfg.Lifecycle.TrialLength/time.Second))
	reminders := make([]string, len(remindersOf(cfg)))
	for i := range reminders {
		reminders[i] = fmt.Sprintf(":r%d", i)
	}
	// The user's company domain and address hash: any value of one user's
	// own does, the daemon computes them in Go.
	company, hash := "'intake' || :uid || '.example'", "sha256(:uid::text::bytea)"
	var b strings.Builder
	b.WriteString("SELECT nextval('trialsbench_pgbench_user') AS uid \\gset\n")
	b.WriteString("BEGIN;\n")
	steps := []struct {
		query string
		args  map[string]string
		then  string
	}{
		{"UserByAPIKeyHash", map[string]string{"key_hash": "(SELECT key_hash FROM api_keys WHERE user_id = :uid)"}, ";"},
		{"UserByIDForUpdate", map[string]string{"id": ":uid"}, ";"},
		{"EligibilityDomainLimits", map[string]string{"domain": company}, ";"},
		{"LockEligibility", map[string]string{"key": "'domain:' || " + company}, ";"},
		{"EligibilityCounts", map[string]string{"address_hash": hash, "domain": company, "since": "now() - interval '365 days'", "test_clock_id": "NULL"}, ";"},
		{"InsertOrganization", map[string]string{"name": "'Intake Org'", "is_trial": "true", "enterprise_features": "true", "created_at": "now()"}, " \\gset org_"},
		{"InsertMembership", map[string]string{"organization_id": ":org_id", "user_id": ":uid", "role": "'admin'", "created_at": "now()"}, ";"},
		{"InsertTrial", map[string]string{"user_id": ":uid", "organization_id": ":org_id", "self_service": "true", "created_at": "now()",
			"expiration_date": length, "notes": "NULL", "organization_name": "'Intake Org'", "use_case": "'benchmark'",
			"user_has_ml_models_in_production": "NULL", "company_name": "NULL", "company_size": "NULL", "country": "NULL",
			"state_or_province": "NULL", "job_title": "NULL", "utm_params": "NULL", "test_clock_id": "NULL"}, " \\gset trial_"},
		{"InsertEligibilityHistory", map[string]string{"trial_id": ":trial_id", "address_hash": hash, "domain": company,
			"started_at": "now()", "grant_id": "NULL", "test_clock_id": "NULL"}, ";"},
		{"InsertTrialEvent", map[string]string{"trial_id": ":trial_id", "kind": "'" + domain.EventCreated + "'", "at": "now()",
			"actor": "'user:' || :uid", "cause": "'request:pgbench'",
			"data": "jsonb_build_object('expirationDate', " + length + ", 'organizationId', :org_id, 'selfService', true)"}, ";"},
	}
	for _, st := range steps {
		sql, err := storeStatement(st.query, st.args)
		if err != nil {
			return "", err
		}
		b.WriteString(sql + st.then + "\n")
	}
	for i := range reminders {
		fmt.Fprintf(&b, "INSERT INTO river_job SELECT (job).* FROM %s WHERE trial_id = :trial_id AND slot = %d RETURNING id AS r%d \\gset\n", pgbenchJobs, i, i)
	}
	fmt.Fprintf(&b, "INSERT INTO river_job SELECT (job).* FROM %s WHERE trial_id = :trial_id AND slot = %d RETURNING id AS jid \\gset\n", pgbenchJobs, len(reminders))
	jobs, err := storeStatement("SetTrialJobs", map[string]string{"transition_job_id": ":jid",
		"reminder_job_ids": "ARRAY[" + strings.Join(reminders, ", ") + "]::bigint[]", "id": ":trial_id"})
	if err != nil {
		return "", err
	}
	b.WriteString(jobs + ";\n")
	b.WriteString("COMMIT;\n")
	return b.String(), nil
}

// storeParam is a parameter of a store query as sqlc spells it: @name,
// sqlc.arg(name) or sqlc.narg(name).
var storeParam = regexp.MustCompile(`@([a-z_][a-z0-9_]*)|sqlc\.n?arg\(([a-z_][a-z0-9_]*)\)`)

// storeEmbed is sqlc's sqlc.embed(table), which sqlc writes as the
// table's columns, and Postgres reads as table.*.
var storeEmbed = regexp.MustCompile(`sqlc\.embed\(([a-z_][a-z0-9_]*)\)`)

// storeStatement is the store's query name on one line, each parameter
// replaced by its pgbench expression in args. Every parameter must have
// one and every expression must be used, so a query that gains or loses a
// parameter fails the script's build, not its run.
func storeStatement(name string, args map[string]string) (string, error) {
	sql, err := store.Query(name)
	if err != nil {
		return "", err
	}
	sql = storeEmbed.ReplaceAllString(sql, "$1.*")
	used := map[string]bool{}
	var missing []string
	sql = storeParam.ReplaceAllStringFunc(sql, func(m string) string {
		sub := storeParam.FindStringSubmatch(m)
		param := sub[1] + sub[2]
		expr, ok := args[param]
		if !ok {
			missing = append(missing, param)
			return m
		}
		used[param] = true
		return "(" + expr + ")"
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("pgbench script: no value for %s of store query %s", strings.Join(missing, ", "), name)
	}
	for param := range args {
		if !used[param] {
			return "", fmt.Errorf("pgbench script: store query %s has no parameter %s", name, param)
		}
	}
	return strings.Join(strings.Fields(sql), " "), nil
}

var (
	tpsLine     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latencyLine = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
	txLine      = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// pgbenchRun is one pgbench run of the intake script: the binary, the
// database and its daemon's configuration, the fresh users the transactions
// act as, and how many clients run for how long, writing the script to Dir.
type pgbenchRun struct {
	Bin      string
	DB       *scratchDB
	Cfg      *config.Config
	Users    []apiUser
	Clients  int
	Duration time.Duration
	Dir      string
}

// runPgbench runs the intake script as r says, after planning the trials'
// River jobs.
func runPgbench(ctx context.Context, r pgbenchRun) (pgbench, error) {
	res := pgbench{Clients: r.Clients}
	bin := r.Bin
	if _, err := os.Stat(bin); err != nil {
		found, lookErr := exec.LookPath("pgbench")
		if lookErr != nil {
			return res, fmt.Errorf("pgbench not found at %s nor on PATH", bin)
		}
		bin = found
	}
	if err := planPgbenchJobs(ctx, r.DB.Pool, r.Cfg, len(r.Users)); err != nil {
		return res, err
	}
	text, err := pgbenchScript(r.Cfg)
	if err != nil {
		return res, err
	}
	res.Script = text
	if _, err := r.DB.Pool.Exec(ctx, fmt.Sprintf(`CREATE SEQUENCE trialsbench_pgbench_user START %d`, r.Users[0].ID)); err != nil {
		return res, fmt.Errorf("creating pgbench user sequence: %w", err)
	}
	script := filepath.Join(r.Dir, "intake-pgbench.sql")
	if err := os.WriteFile(script, []byte(res.Script), 0o644); err != nil {
		return res, fmt.Errorf("writing pgbench script: %w", err)
	}
	conn, err := pgx.ParseConfig(r.DB.URL)
	if err != nil {
		return res, fmt.Errorf("parsing database URL: %w", err)
	}
	secs := max(1, int(r.Duration.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, bin, "-n", "-c", strconv.Itoa(r.Clients), "-j", strconv.Itoa(min(r.Clients, runtime.NumCPU())),
		"-T", strconv.Itoa(secs), "-f", script,
		"-h", conn.Host, "-p", strconv.Itoa(int(conn.Port)), "-U", conn.User, conn.Database)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+conn.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	return res, parsePgbench(out, &res)
}

// parsePgbench reads pgbench's summary into res.
func parsePgbench(out []byte, res *pgbench) error {
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("pgbench printed no tps:\n%s", out)
	}
	res.TPS, _ = strconv.ParseFloat(string(m[1]), 64)
	res.TPS = round1(res.TPS)
	if m := latencyLine.FindSubmatch(out); m != nil {
		res.LatencyAvgMs, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := txLine.FindSubmatch(out); m != nil {
		res.Transactions, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return nil
}

// remindersOf are the reminders a new trial of cfg gets, as the lifecycle's
// schedule picks them: those due after the trial starts.
func remindersOf(cfg *config.Config) []time.Duration {
	var out []time.Duration
	for _, before := range cfg.Lifecycle.ReminderBefore {
		if before < cfg.Lifecycle.TrialLength {
			out = append(out, before)
		}
	}
	return out
}

// intakeJobs are the jobs StartTrial enqueues for a self-service trial
// started at now, in the script's slots: its reminders, then its expiry.
func intakeJobs(cfg *config.Config, trialID int64, now time.Time) []river.InsertManyParams {
	expires := domain.Instant(now.Add(cfg.Lifecycle.TrialLength))
	var out []river.InsertManyParams
	for _, before := range remindersOf(cfg) {
		out = append(out, river.InsertManyParams{
			Args:       jobargs.RemindTrial{V: jobargs.Version, TrialID: trialID, Generation: 1, Before: before},
			InsertOpts: &river.InsertOpts{ScheduledAt: expires.Add(-before)},
		})
	}
	return append(out, expireJob(trialID, expires))
}

// planPgbenchJobs has River write the jobs of the n trials the pgbench run
// can create, then moves those rows, whole and unseen by any other
// transaction, from river_job into pgbenchJobs, keyed by trial and slot, for
// the script to insert again. The trials will draw their ids from the
// sequence, set here to run through the planned ones; a trial past them
// finds no job row and aborts the run, as running out of users does.
func planPgbenchJobs(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config, n int) error {
	client, err := newInserter(pool, cfg.River.MaxAttempts)
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning pgbench plan: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var trialBase, lastJob int64
	if err := tx.QueryRow(ctx, `SELECT setval('trials_id_seq', greatest((SELECT coalesce(max(id), 0) FROM trials), (SELECT last_value FROM trials_id_seq))),
		(SELECT coalesce(max(id), 0) FROM river_job)`).Scan(&trialBase, &lastJob); err != nil {
		return fmt.Errorf("reading id bases for pgbench: %w", err)
	}
	now, perTrial := time.Now(), len(remindersOf(cfg))+1
	if err := insertJobs(ctx, tx, client, n*perTrial, func(i int) river.InsertManyParams {
		return intakeJobs(cfg, trialBase+int64(i/perTrial)+1, now)[i%perTrial]
	}); err != nil {
		return err
	}
	if err := movePlanned(ctx, tx, cfg, lastJob, n*perTrial); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing pgbench plan: %w", err)
	}
	return nil
}

// movePlanned moves the want jobs River wrote after lastJob from river_job
// into pgbenchJobs, each keyed by its trial and its slot in the script.
func movePlanned(ctx context.Context, tx pgx.Tx, cfg *config.Config, lastJob int64, want int) error {
	rows, err := tx.Query(ctx, `SELECT id, kind, args FROM river_job WHERE id > $1`, lastJob)
	if err != nil {
		return fmt.Errorf("reading planned pgbench jobs: %w", err)
	}
	var ids, trials []int64
	var slots []int32
	var id int64
	var kind string
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &kind, &raw}, func() error {
		trial, slot, err := jobSlot(cfg, kind, raw)
		if err != nil {
			return fmt.Errorf("job %d: %w", id, err)
		}
		ids, trials, slots = append(ids, id), append(trials, trial), append(slots, slot)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading planned pgbench jobs: %w", err)
	}
	if len(ids) != want {
		return fmt.Errorf("River wrote %d pgbench jobs, want %d", len(ids), want)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE `+pgbenchJobs+` AS SELECT p.trial_id, p.slot, j AS job
		FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS p(id, trial_id, slot) JOIN river_job j ON j.id = p.id`,
		ids, trials, slots); err != nil {
		return fmt.Errorf("keeping planned pgbench jobs: %w", err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE `+pgbenchJobs+` ADD PRIMARY KEY (trial_id, slot)`); err != nil {
		return fmt.Errorf("indexing planned pgbench jobs: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM river_job WHERE id = ANY($1::bigint[])`, ids); err != nil {
		return fmt.Errorf("taking planned pgbench jobs out of river_job: %w", err)
	}
	return nil
}

// jobSlot says whose trial a planned job is for and its slot in the script.
func jobSlot(cfg *config.Config, kind string, raw []byte) (int64, int32, error) {
	switch kind {
	case jobargs.KindExpireTrial:
		var a jobargs.ExpireTrial
		err := json.Unmarshal(raw, &a)
		return a.TrialID, int32(len(remindersOf(cfg))), err
	case jobargs.KindRemindTrial:
		var a jobargs.RemindTrial
		if err := json.Unmarshal(raw, &a); err != nil {
			return 0, 0, err
		}
		slot := slices.Index(remindersOf(cfg), a.Before)
		if slot < 0 {
			return 0, 0, fmt.Errorf("no reminder %s before expiry in the script", a.Before)
		}
		return a.TrialID, int32(slot), nil
	}
	return 0, 0, fmt.Errorf("a %s job is not a trial's", kind)
}
