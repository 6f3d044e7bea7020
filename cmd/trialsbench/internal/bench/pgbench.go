package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/config"
)

// pgbench is what pgbench measured running the intake's inserts.
type pgbench struct {
	Clients      int     `json:"clients"`
	TPS          float64 `json:"tps"`
	LatencyAvgMs float64 `json:"latencyAvgMs"`
	Transactions int64   `json:"transactions"`
	Script       string  `json:"script"`
}

// pgbenchScript is one intake request as SQL, statement for statement what
// the daemon sends for POST /v1/api/user/trial by a user with an API key:
// the key lookup, the user's lock, the organization, the membership, the
// trial, its trial.created event, its reminder and expiry jobs (River's
// columns and unique keys) and the trial's job ids. Each transaction takes
// the next fresh user from a sequence, as each HTTP request does.
func pgbenchScript(cfg *config.Config) string {
	length := int64(cfg.Lifecycle.TrialLength / time.Second)
	var b strings.Builder
	b.WriteString("SELECT nextval('trialsbench_pgbench_user') AS uid \\gset\n")
	b.WriteString("BEGIN;\n")
	b.WriteString("SELECT u.id, u.is_admin, u.token_version FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.user_id = :uid AND k.revoked_at IS NULL;\n")
	b.WriteString("SELECT id, username, email, name FROM users WHERE id = :uid FOR UPDATE;\n")
	b.WriteString("INSERT INTO organizations (name, is_trial, enterprise_features, created_at) VALUES ('Intake Org', true, true, now()) RETURNING id AS org \\gset\n")
	b.WriteString("INSERT INTO organization_members (organization_id, user_id, role, created_at) VALUES (:org, :uid, 'admin', now());\n")
	fmt.Fprintf(&b, "INSERT INTO trials (user_id, organization_id, self_service, created_at, expiration_date, organization_name, use_case) "+
		"VALUES (:uid, :org, true, now(), now() + interval '%d seconds', 'Intake Org', 'benchmark') RETURNING id AS tid \\gset\n", length)
	fmt.Fprintf(&b, "INSERT INTO trial_events (trial_id, kind, at, actor, cause, data) VALUES (:tid, 'trial.created', now(), 'user:' || :uid, 'request:pgbench', "+
		"jsonb_build_object('expirationDate', now() + interval '%d seconds', 'organizationId', :org, 'selfService', true));\n", length)
	var reminders []string
	for i, before := range cfg.Lifecycle.ReminderBefore {
		if before >= cfg.Lifecycle.TrialLength {
			continue
		}
		ns := int64(before)
		fmt.Fprintf(&b, "INSERT INTO river_job (state, max_attempts, scheduled_at, args, kind, queue, unique_key, unique_states) "+
			"VALUES ('scheduled', %d, now() + interval '%d seconds', jsonb_build_object('v', 1, 'trial_id', :tid, 'generation', 1, 'before', %d), 'trial.remind', 'lifecycle', "+
			"sha256(convert_to('&kind=trial.remind&args={\"before\":%d,\"generation\":1,\"trial_id\":' || :tid || '}', 'UTF8')), B'11110101') RETURNING id AS r%d \\gset\n",
			cfg.River.MaxAttempts, length-int64(before/time.Second), ns, ns, i)
		reminders = append(reminders, fmt.Sprintf(":r%d", i))
	}
	fmt.Fprintf(&b, "INSERT INTO river_job (state, max_attempts, scheduled_at, args, kind, queue, unique_key, unique_states) "+
		"VALUES ('scheduled', %d, now() + interval '%d seconds', jsonb_build_object('v', 1, 'trial_id', :tid, 'generation', 1), 'trial.expire', 'lifecycle', "+
		"sha256(convert_to('&kind=trial.expire&args={\"generation\":1,\"trial_id\":' || :tid || '}', 'UTF8')), B'11110101') RETURNING id AS jid \\gset\n",
		cfg.River.MaxAttempts, length)
	fmt.Fprintf(&b, "UPDATE trials SET transition_job_id = :jid, reminder_job_ids = ARRAY[%s]::bigint[] WHERE id = :tid;\n", strings.Join(reminders, ", "))
	b.WriteString("COMMIT;\n")
	return b.String()
}

var (
	tpsLine     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latencyLine = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
	txLine      = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// runPgbench runs the intake script with clients connections for d against
// db, taking users from firstUser on.
func runPgbench(ctx context.Context, bin string, db *scratchDB, cfg *config.Config, firstUser int64, clients int, d time.Duration, dir string) (pgbench, error) {
	res := pgbench{Clients: clients, Script: pgbenchScript(cfg)}
	if _, err := os.Stat(bin); err != nil {
		found, lookErr := exec.LookPath("pgbench")
		if lookErr != nil {
			return res, fmt.Errorf("pgbench not found at %s nor on PATH", bin)
		}
		bin = found
	}
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`CREATE SEQUENCE trialsbench_pgbench_user START %d`, firstUser)); err != nil {
		return res, fmt.Errorf("creating pgbench user sequence: %w", err)
	}
	script := filepath.Join(dir, "intake-pgbench.sql")
	if err := os.WriteFile(script, []byte(res.Script), 0o644); err != nil {
		return res, fmt.Errorf("writing pgbench script: %w", err)
	}
	conn, err := pgx.ParseConfig(db.URL)
	if err != nil {
		return res, fmt.Errorf("parsing database URL: %w", err)
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, bin, "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, runtime.NumCPU())),
		"-T", strconv.Itoa(secs), "-f", script,
		"-h", conn.Host, "-p", strconv.Itoa(int(conn.Port)), "-U", conn.User, conn.Database)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+conn.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("pgbench printed no tps:\n%s", out)
	}
	res.TPS, _ = strconv.ParseFloat(string(m[1]), 64)
	res.TPS = round1(res.TPS)
	if m := latencyLine.FindSubmatch(out); m != nil {
		res.LatencyAvgMs, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := txLine.FindSubmatch(out); m != nil {
		res.Transactions, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return res, nil
}
