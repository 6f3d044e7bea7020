package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// FootprintReport is scenario 6: what trialsd costs to run.
type FootprintReport struct {
	Meta
	BinaryBytes int64 `json:"binaryBytes"`
	// StartToReady is exec to the first 200 of /readyz, on a migrated
	// database, for each start.
	StartToReady     []float64 `json:"startToReadyMs"`
	StartToReadyP50  float64   `json:"startToReadyP50Ms"`
	RSSIdleBytes     int64     `json:"rssIdleBytes"`
	RSSIdleAfterS    float64   `json:"rssIdleAfterS"`
	RSSStormBytes    int64     `json:"rssStormBytes"`
	TargetIdleBytes  int64     `json:"targetIdleBytes"`
	TargetStormBytes int64     `json:"targetStormBytes"`
}

func (r *FootprintReport) table() [][2]string {
	storm := "n/a (storm not run)"
	if r.RSSStormBytes > 0 {
		storm = fmt.Sprintf("%.1f MB (target ≤ %.0f MB)", mb(r.RSSStormBytes), mb(r.TargetStormBytes))
	}
	return [][2]string{
		{"binary size", fmt.Sprintf("%.1f MB (stripped, -trimpath)", mb(r.BinaryBytes))},
		{"start-up to /readyz", fmt.Sprintf("p50 %s over %d starts %v ms", fmtMs(r.StartToReadyP50), len(r.StartToReady), r.StartToReady)},
		{"RSS idle", fmt.Sprintf("%.1f MB, %gs after ready (target ≤ %.0f MB)", mb(r.RSSIdleBytes), r.RSSIdleAfterS, mb(r.TargetIdleBytes))},
		{"RSS during the storm (peak)", storm},
	}
}

func (h *harness) runFootprint(ctx context.Context) (_ report, err error) {
	starts, idleAfter := max(1, h.opts.FootprintStarts), h.opts.FootprintIdle
	began := time.Now()
	rep := &FootprintReport{Meta: Meta{Scenario: ScenarioFootprint, At: began}, RSSIdleAfterS: idleAfter.Seconds(),
		TargetIdleBytes: 40 << 20, TargetStormBytes: 150 << 20}
	st, err := os.Stat(h.setup.Bin)
	if err != nil {
		return nil, fmt.Errorf("reading binary size: %w", err)
	}
	rep.BinaryBytes = st.Size()
	db, err := newScratchDB(ctx, h.tmpl, ScenarioFootprint, 2)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	rep.Database = db.Name
	if _, err := createAdmin(ctx, db.Pool); err != nil {
		return nil, err
	}
	for i := range starts {
		d, err := h.setup.start(ctx, db.URL, ScenarioFootprint, false)
		if err != nil {
			return nil, err
		}
		rep.StartToReady = append(rep.StartToReady, ms(d.StartToReady))
		if i == starts-1 {
			select {
			case <-ctx.Done():
			case <-time.After(idleAfter):
			}
			if u, err := readProc(d.Pid); err == nil {
				rep.RSSIdleBytes = u.RSS
			}
		}
		if err := d.stop(); err != nil {
			return nil, err
		}
	}
	sorted := slices.Clone(rep.StartToReady)
	slices.Sort(sorted)
	rep.StartToReadyP50 = sorted[len(sorted)/2]
	rep.ElapsedS = round1(time.Since(began).Seconds())
	return rep, nil
}

// withStorm takes the daemon's peak RSS during the storm of the same run.
func (r *FootprintReport) withStorm(storm *StormReport) {
	r.RSSStormBytes = storm.Daemon.PeakRSSBytes
}
