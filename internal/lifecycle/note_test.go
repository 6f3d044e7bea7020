package lifecycle_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
)

// An operator's note travels with the change into the data of the events it
// records, so the timeline says why; without one the data is as before,
// and an overlong one is refused before anything changes.
func TestOperatorNoteIsRecordedInTheEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tr := startTrial(t, b, t0.Add(24*time.Hour))
	admin := domain.Actor{UserID: tr.UserID, Admin: true}
	err := b.svc.DeleteTrialNow(ctx, admin, tr.ID, "request:n0", lifecycle.WithNote(strings.Repeat("x", domain.MaxNotesLength+1)))
	if apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("overlong note: %v, want Invalid", err)
	}
	if got, _ := b.svc.Trial(ctx, tr.ID); got.State != domain.StateActive {
		t.Errorf("refused delete left the trial %s", got.State)
	}
	later := t0.Add(7 * 24 * time.Hour)
	if err := b.svc.UpdateTrial(ctx, admin, tr.ID, lifecycle.UpdateTrialRequest{ExpirationDate: &later}, "request:n1",
		lifecycle.WithNote("prospect asked <b>nicely</b>")); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Upgrade(ctx, admin, tr.ID, "request:n2"); err != nil {
		t.Fatal(err)
	}
	note := func(kind string) any {
		t.Helper()
		evs := b.events(t, tr.ID, kind)
		if len(evs) != 1 {
			t.Fatalf("%d %s events", len(evs), kind)
		}
		var data map[string]any
		if err := json.Unmarshal(evs[0].Data, &data); err != nil {
			t.Fatal(err)
		}
		return data["note"]
	}
	if got := note(domain.EventExtended); got != "prospect asked <b>nicely</b>" {
		t.Errorf("extended note = %v", got)
	}
	if got := note(domain.EventUpgraded); got != nil {
		t.Errorf("upgraded without a note has note = %v", got)
	}

}
