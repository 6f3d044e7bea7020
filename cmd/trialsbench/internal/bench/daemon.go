package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trialsd/trialsd/internal/config"
)

// jwtSecret signs the bench daemons' logins; they live only for one run.
const jwtSecret = "trialsbench-trialsbench-trialsbench-0123"

// daemonSetup is how every scenario runs trialsd: one binary, the same
// config files and environment, so their figures compare.
type daemonSetup struct {
	Bin   string
	Files []string
	// Env are extra TRIALSD_* settings (KEY=value) on top of the process's.
	Env    []string
	LogDir string
}

// buildTrialsd builds the daemon as `make build` does (stripped, trimmed),
// so the binary size is the shipped one.
func buildTrialsd(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "trialsd")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/trialsd/trialsd/cmd/trialsd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building trialsd: %w\n%s", err, out)
	}
	return bin, nil
}

// env is the daemon's environment on database dbURL listening on addr.
func (s daemonSetup) env(dbURL, addr string) []string {
	env := append(os.Environ(),
		"TRIALSD_DATABASE_URL="+dbURL,
		"TRIALSD_HTTP_ADDR="+addr,
		"TRIALSD_AUTH_JWT_SECRET="+jwtSecret,
		"TRIALSD_TURNSTILE_ENABLED=false",
	)
	return append(env, s.Env...)
}

// Config is the configuration the daemon on dbURL runs with, read the way
// it reads it, so the River baseline can use the same queue settings.
func (s daemonSetup) Config(dbURL string) (*config.Config, error) {
	env := s.env(dbURL, "127.0.0.1:0")
	lookup := func(key string) string {
		val := ""
		for _, kv := range env { // later entries win, as in exec
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				val = v
			}
		}
		return val
	}
	files := s.Files
	if len(files) == 0 {
		if f := lookup("TRIALSD_CONFIG"); f != "" {
			files = []string{f}
		}
	}
	cfg, err := config.Load(files, lookup)
	if err != nil {
		return nil, fmt.Errorf("loading the daemon's config: %w", err)
	}
	return cfg, nil
}

// runCLI runs a trialsd operator command on dbURL and returns its output.
func (s daemonSetup) runCLI(ctx context.Context, dbURL string, args ...string) (string, error) {
	full := []string{}
	for _, f := range s.Files {
		full = append(full, "--config", f)
	}
	cmd := exec.CommandContext(ctx, s.Bin, append(full, args...)...)
	cmd.Env = s.env(dbURL, "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("trialsd %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// daemonProc is a running `trialsd serve`.
type daemonProc struct {
	cmd     *exec.Cmd
	BaseURL string
	Pid     int
	// StartToReady is from exec to the first 200 of /readyz.
	StartToReady time.Duration
	// Usage samples the process from its exec, when start was asked to.
	Usage   *sampler
	logPath string
	exited  chan error
}

// start runs `trialsd serve` on dbURL and waits until /readyz answers 200.
// With sample, its usage is sampled from exec on: River starts working
// before the API listens, so a backlog's work begins before ready.
func (s daemonSetup) start(ctx context.Context, dbURL, name string, sample bool, extraEnv ...string) (*daemonProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(s.LogDir, name+".daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating daemon log: %w", err)
	}
	args := []string{"serve"}
	for _, f := range s.Files {
		args = append(args, "--config", f)
	}
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = append(s.env(dbURL, addr), extraEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	began := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting trialsd: %w", err)
	}
	d := &daemonProc{cmd: cmd, BaseURL: "http://" + addr, Pid: cmd.Process.Pid, logPath: logPath, exited: make(chan error, 1)}
	if sample {
		d.Usage = startSampler(ctx, d.Pid, 100*time.Millisecond)
	}
	go func() {
		d.exited <- cmd.Wait()
		logFile.Close()
	}()
	if err := d.waitReady(ctx, 60*time.Second); err != nil {
		if d.Usage != nil {
			d.Usage.stop()
		}
		_ = d.stop()
		return nil, err
	}
	d.StartToReady = time.Since(began)
	return d, nil
}

// waitReady polls /readyz every 5 ms, for start-up time at that resolution.
func (d *daemonProc) waitReady(ctx context.Context, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(d.BaseURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			return fmt.Errorf("trialsd exited before ready (%v): %s", err, tailOf(d.logPath, 2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("trialsd not ready after %s: %s", limit, tailOf(d.logPath, 2000))
		}
	}
}

// stop sends SIGTERM and waits for a graceful exit, killing it after 60 s.
func (d *daemonProc) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.exited <- err
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return fmt.Errorf("waiting for trialsd: %w", err)
		}
		if err != nil {
			return fmt.Errorf("trialsd exited with %w: %s", err, tailOf(d.logPath, 2000))
		}
		return nil
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		return errors.New("trialsd did not stop within 60s of SIGTERM; killed")
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tailOf(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
