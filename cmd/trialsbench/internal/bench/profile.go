package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/config"
)

// pprofKey is the config key that makes trialsd serve Go's profiler on a
// listener of its own. Older daemons have no such key; the harness then
// records that no profile could be taken rather than fail.
const pprofKey = "http.pprof_addr"

// profiling reports whether the daemon being measured can serve pprof.
func profiling() bool {
	_, ok := config.Keys()[pprofKey]
	return ok
}

// profileEnv returns the setting that opens the profiler on a free port,
// and its address; nothing when the daemon cannot profile.
func profileEnv() (env []string, addr string, err error) {
	if !profiling() {
		return nil, "", nil
	}
	addr, err = freeAddr()
	if err != nil {
		return nil, "", err
	}
	return []string{config.EnvName(pprofKey) + "=" + addr}, addr, nil
}

// profile is a CPU profile taken of the daemon and what it shows.
type profile struct {
	File string `json:"file"`
	// Top is `go tool pprof -top`'s heaviest functions, cumulative.
	Top []string `json:"top"`
}

// captureProfile takes a CPU profile of d lasting seconds through its pprof
// listener at addr, saves it as name in the out directory and summarises it.
func (h *harness) captureProfile(ctx context.Context, addr string, seconds int, name string) (*profile, error) {
	client := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching CPU profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching CPU profile: status %d, %v", resp.StatusCode, err)
	}
	path := filepath.Join(h.opts.OutDir, name)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	p := &profile{File: path}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=30", h.setup.Bin, path).Output()
	if err != nil {
		return p, nil // the profile is saved; a summary is a convenience
	}
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			p.Top = append(p.Top, line)
		}
	}
	return p, nil
}
