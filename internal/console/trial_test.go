package console

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
)

// renderTrial renders a trial's page for v as the handler does.
func renderTrial(t *testing.T, v trialView) string {
	t.Helper()
	var b strings.Builder
	if err := pages["trial"].ExecuteTemplate(&b, "layout", page{Title: "Trial", Now: v.Now, Admin: domain.User{ID: 1}, Data: v}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The timeline says what caused each event, every kind of cause the code
// records, as domain.ParseCause reads it.
func TestTimelineNamesEveryCause(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	causes := map[string]string{
		domain.JobCause(42):                  "job 42",
		domain.RequestCause("req-1"):         "request <code>req-1</code>",
		domain.PaymentCause("evt_9"):         "payment event <code>evt_9</code>",
		domain.CommandCause("trials-extend"): "command <code>trials-extend</code>",
		domain.OutboxCause(17):               "e-mail delivery 17",
		domain.SweepCause:                    "by system ·\n" + domain.SweepCause + "</p>",
		domain.ReconcileCause:                "by system ·\n" + domain.ReconcileCause + "</p>",
		domain.TestClockDeleteCause:          "by system ·\n" + domain.TestClockDeleteCause + "</p>",
	}
	v := trialView{Trial: domain.Trial{ID: 7, State: domain.StateActive, ExpirationDate: now}, Now: now}
	for cause := range causes {
		ev := domain.Event{ID: 1, TrialID: 7, Kind: domain.EventExpired, At: now, Actor: "system", Cause: cause}
		v.Events = append(v.Events, timelineEntry{Event: ev, Caused: domain.ParseCause(cause)})
	}
	body := renderTrial(t, v)
	for cause, want := range causes {
		if !strings.Contains(body, want) {
			t.Errorf("cause %q: the timeline does not say %q", cause, want)
		}
	}
}

// A notice e-mail's event says on its line which notice went to whom, and
// how it went.
func TestTimelineShowsTheEmails(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	v := trialView{Trial: domain.Trial{ID: 7, State: domain.StateExpired, ExpirationDate: now}, Now: now}
	ev := domain.Event{ID: 1, TrialID: 7, Kind: domain.EventEmailFailed, At: now, Actor: "system", Cause: domain.OutboxCause(3),
		Data: []byte(`{"template":"deletion_warning","to":"f***@acme.example","outcome":"failed"}`)}
	v.Events = timelineOf([]domain.Event{ev}, nil)
	if body := renderTrial(t, v); !strings.Contains(body, "deletion_warning e-mail to f***@acme.example: failed") {
		t.Errorf("the timeline does not show the e-mail:\n%s", body)
	}
}

// A trial's page offers the actions its state allows (State.Actions) and
// no other.
func TestTrialPageOffersTheStatesActions(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range domain.States {
		body := renderTrial(t, trialView{Trial: domain.Trial{ID: 7, State: s, ExpirationDate: now}, Now: now})
		for _, a := range domain.Actions {
			offered := strings.Contains(body, `action="/console/trials/7/`+string(a)+`"`)
			if want := slices.Contains(s.Actions(), a); offered != want {
				t.Errorf("%s trial: action %s offered = %v, want %v", s, a, offered, want)
			}
		}
	}
}
