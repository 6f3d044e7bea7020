package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trialsd/trialsd/internal/testdb"
)

func TestTestClocksCommands(t *testing.T) {
	t.Parallel()
	_, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	env["TRIALSD_TEST_CLOCKS_ENABLED"] = "true"

	r := mustRun(t, env, "", "testclocks", "create", "--name", "rehearsal", "--frozen-time", "2031-01-01T00:00:00Z", "--json")
	var clk map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &clk); err != nil || clk["frozenTime"] != "2031-01-01T00:00:00.000Z" || clk["status"] != "ready" {
		t.Fatalf("create --json: %v %s", err, r.stdout)
	}
	r = mustRun(t, env, "", "testclocks", "list")
	if rows := table(t, r.stdout, 1, "ID", "NAME", "FROZEN TIME", "STATUS", "DELETES AFTER"); len(rows) != 1 || rows[0][1] != "rehearsal" {
		t.Fatalf("list:\n%s", r.stdout)
	}
	// No daemon runs here: the clock starts advancing and stays so.
	r = mustRun(t, env, "", "testclocks", "advance", "1", "--to", "2031-01-16T00:00:00Z", "--json")
	if !strings.Contains(r.stdout, `"status": "advancing"`) || !strings.Contains(r.stdout, `"targetTime": "2031-01-16T00:00:00.000Z"`) {
		t.Fatalf("advance:\n%s", r.stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"testclocks", "advance", "1", "--to", "2031-02-01T00:00:00Z"}, exitConflict},
		{[]string{"testclocks", "advance", "1", "--to", "tomorrow"}, exitInvalid},
		{[]string{"testclocks", "show", "x"}, exitInvalid},
		{[]string{"testclocks", "show", "2"}, exitNotFound},
	} {
		if r := mustFail(t, env, "", tc.args...); r.code != tc.code {
			t.Errorf("trialsd %s: exit %d, want %d (%s)", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
		}
	}
	if r := mustRun(t, env, "", "testclocks", "delete", "1"); !strings.Contains(r.stdout, "test clock 1 deleted") {
		t.Errorf("delete: %s", r.stdout)
	}
	if r := mustFail(t, dbEnv(url), "", "testclocks", "list"); r.code != exitNotFound || !strings.Contains(r.stderr, "test_clocks.enabled") {
		t.Errorf("with test clocks off: exit %d %s, want not found naming the setting", r.code, r.stderr)
	}
}
