package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/emails"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/wire"
)

// consolePageSize is how many trials a page of the list shows.
const consolePageSize = 50

// trialList is the trials page: the filter, the page and the next one's key.
type trialList struct {
	Query  string
	State  string
	States []domain.State
	Trials []domain.TrialListing
	// Purged is the page when State is domain.StatePurged: what the
	// trial.purged events say of trials whose rows are gone.
	Purged []domain.PurgedTrial
	// Next is the after= of the next page; "" on the last.
	Next string
}

// trials lists trials by expiration date, filtered by state and by the
// search box, a page at a time by key.
func (c *console) trials(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	states := append(slices.Clone(domain.States), domain.StatePurged)
	l := trialList{Query: strings.TrimSpace(v.Get("q")), State: v.Get("state"), States: states}
	f := domain.TrialSearch{Query: l.Query, State: domain.State(l.State), Limit: consolePageSize + 1}
	if a := v.Get("after"); a != "" {
		k, err := parseTrialKey(a)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		f.After = &k
	}
	var err error
	if f.State == domain.StatePurged {
		l.Purged, err = c.lifecycle.PurgedTrials(r.Context(), f)
		l.Purged, l.Next = cutPage(l.Purged, func(p domain.PurgedTrial) domain.TrialKey {
			return domain.TrialKey{ExpirationDate: p.PurgedAt, ID: p.ID}
		})
	} else {
		l.Trials, err = c.lifecycle.Search(r.Context(), f)
		l.Trials, l.Next = cutPage(l.Trials, domain.TrialListing.Key)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "trials", page{Title: "Trials", Data: l})
}

// cutPage cuts rows, read one past consolePageSize, to a page, with the
// after= of the next one by the rows' keys ("" on the last page).
func cutPage[T any](rows []T, key func(T) domain.TrialKey) ([]T, string) {
	if len(rows) <= consolePageSize {
		return rows, ""
	}
	rows = rows[:consolePageSize]
	return rows, formatTrialKey(key(rows[len(rows)-1]))
}

// formatTrialKey writes a list key as after= carries it: the expiration
// date in Unix microseconds (the database's precision), a dot, the id.
func formatTrialKey(k domain.TrialKey) string {
	return fmt.Sprintf("%d.%d", k.ExpirationDate.UnixMicro(), k.ID)
}

func parseTrialKey(s string) (domain.TrialKey, error) {
	at, id, ok := strings.Cut(s, ".")
	us, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return domain.TrialKey{}, apperr.InvalidField("after", "after is not a page of this list")
	}
	return domain.TrialKey{ExpirationDate: time.UnixMicro(us).UTC(), ID: n}, nil
}

// trialView is a trial's page: the trial, its parties, what is scheduled,
// its history with each event's deliveries.
type trialView struct {
	Trial   domain.Trial
	Parties lifecycle.Parties
	Pending []lifecycle.PendingJob
	// Events is a page of the history, newest first: at most
	// consoleEventsPage of them.
	Events []timelineEntry
	// Older is the before= of the next, older, page; 0 on the last.
	Older int64
	// Simulated is set when the trial lives on a test clock: its times are
	// the clock's.
	Simulated bool
	// Now is the trial's now: its clock's time when Simulated.
	Now time.Time
	// Purged, for a purged trial, says when: only its history is left to
	// show.
	Purged string
	// Eligibility is what the rules say of the user's address now, with
	// the company domain's history; nil for a purged trial.
	Eligibility *eligibilityView
}

// eligibilityView is an eligibility report as the trial page shows it.
type eligibilityView struct{ eligibility.Report }

// Limit is a limit as written: "none" for 0.
func (eligibilityView) Limit(n int) string {
	if n == 0 {
		return "none"
	}
	return strconv.Itoa(n)
}

// EmailNames are the notices the page links to the previews of.
func (trialView) EmailNames() []string { return emails.Names }

// timelineEntry is one event with what the timeline shows of it.
type timelineEntry struct {
	domain.Event
	Note string
	// Caused is what caused it, read by domain.ParseCause.
	Caused     domain.Cause
	Deliveries []domain.Delivery
	// DataShown is the event's data as the page shows it: at most
	// consoleDataShown bytes of it; Truncated says the rest was left out.
	DataShown string
	Truncated bool
	// Email is a notice e-mail's event's data, for its line.
	Email *domain.EmailEventData
}

// consoleEventsPage is how many events a page of a trial's timeline shows,
// and consoleDataShown how much of each event's data: a member's extension
// requests are each up to 16 KiB and a trial may hold thousands, so the
// page is bounded by both, whatever the history holds.
const (
	consoleEventsPage = 50
	consoleDataShown  = 2 << 10
)

// trial shows one trial: its parties, what is scheduled, and its history a
// page at a time, newest first (before= pages back).
func (c *console) trial(w http.ResponseWriter, r *http.Request) {
	v, err := c.trialView(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := page{Title: fmt.Sprintf("Trial %d", v.Trial.ID), Data: v, Flash: doneMessages[domain.Action(r.URL.Query().Get("done"))], Now: v.Now}
	if v.Simulated {
		p.NowOf = fmt.Sprintf("test clock %d", *v.Trial.TestClockID)
	}
	c.render(w, r, http.StatusOK, "trial", p)
}

func (c *console) trialView(r *http.Request) (trialView, error) {
	id, err := wire.ParseID("id", r.PathValue("id"))
	if err != nil {
		return trialView{}, err
	}
	ctx := r.Context()
	t, err := c.lifecycle.Trial(ctx, id)
	var v trialView
	switch {
	case lifecycle.IsPurged(err):
		v = trialView{Trial: domain.Trial{ID: id}, Purged: apperr.MessageOf(err), Now: c.clock.Now()}
	case err != nil:
		return trialView{}, err
	default:
		if v, err = c.liveView(r, t); err != nil {
			return trialView{}, err
		}
	}
	before, err := wire.ParseOptionalID("before", r.URL.Query().Get("before"))
	if err != nil {
		return trialView{}, err
	}
	events, err := c.lifecycle.EventsBefore(ctx, id, before, consoleEventsPage+1)
	if err != nil {
		return trialView{}, err
	}
	if len(events) > consoleEventsPage {
		events = events[:consoleEventsPage]
		v.Older = events[len(events)-1].ID
	}
	v.Events, err = c.timeline(r, events)
	return v, err
}

// liveView is what a trial's page shows besides its history: the trial,
// its parties and what is scheduled, timed by the trial's now.
func (c *console) liveView(r *http.Request, t domain.Trial) (trialView, error) {
	ctx := r.Context()
	v := trialView{Trial: t, Simulated: t.TestClockID != nil}
	var err error
	if v.Now, err = c.lifecycle.NowOf(ctx, t); err != nil {
		return trialView{}, err
	}
	if v.Parties, err = c.lifecycle.PartiesOf(ctx, t); err != nil {
		return trialView{}, err
	}
	if v.Pending, err = c.lifecycle.PendingJobs(ctx, t); err != nil {
		return trialView{}, err
	}
	slices.SortFunc(v.Pending, func(a, b lifecycle.PendingJob) int { return a.ScheduledAt.Compare(b.ScheduledAt) })
	// The page is the trial's first: a failed eligibility report leaves
	// out its section, not the page.
	if rep, err := c.eligibility.Show(ctx, eligibility.Subject{Email: v.Parties.User.Email}); err != nil {
		c.logger.WarnContext(ctx, "trial page without its eligibility section", "trial_id", t.ID, "error", err)
	} else {
		v.Eligibility = &eligibilityView{rep}
	}
	return v, nil
}

// timeline pairs each event of a page, newest first, with its note, its
// cause, its deliveries (without their payloads) and the part of its data
// shown.
func (c *console) timeline(r *http.Request, events []domain.Event) ([]timelineEntry, error) {
	deliveries, err := c.endpoints.DeliveriesOf(r.Context(), events)
	if err != nil {
		return nil, err
	}
	return timelineOf(events, deliveries), nil
}

// timelineOf is timeline of events with their deliveries.
func timelineOf(events []domain.Event, deliveries []domain.Delivery) []timelineEntry {
	byEvent := map[string][]domain.Delivery{}
	for _, m := range deliveries {
		byEvent[m.EventID] = append(byEvent[m.EventID], m)
	}
	out := make([]timelineEntry, 0, len(events))
	for _, ev := range events {
		e := timelineEntry{Event: ev, Deliveries: byEvent[outbox.EventID(ev.ID)]}
		e.DataShown, e.Truncated = shownPart(string(ev.Data), consoleDataShown)
		var data struct {
			Note string `json:"note"`
			domain.EmailEventData
		}
		_ = json.Unmarshal(e.Data, &data) // data the lifecycle or the outbox wrote; a note or none
		e.Note = data.Note
		if ev.Kind == domain.EventEmailSent || ev.Kind == domain.EventEmailFailed {
			e.Email = &data.EmailEventData
		}
		e.Caused = domain.ParseCause(e.Cause)
		out = append(out, e)
	}
	return out
}

// shownPart cuts s to at most n bytes, on a character boundary, and says
// whether it did.
func shownPart(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

// doneMessages are what the trial page says after each action.
var doneMessages = map[domain.Action]string{
	domain.ActionMoveExpiration: "The expiration date was changed.",
	domain.ActionUpgrade:        "The trial was upgraded.",
	domain.ActionDelete:         "The trial was deleted.",
	domain.ActionRestore:        "The trial's organization was restored.",
	actionGrant:                 "One more trial was granted; the next start it applies to uses it.",
}

// actionGrant is the grant of one more trial, which is not one of the
// trial's own actions.
const actionGrant domain.Action = "eligibility-grant"

// grant records an admin's grant of one more trial to the trial user's
// address, or to anyone at its company domain, with the admin's note.
func (c *console) grant(w http.ResponseWriter, r *http.Request) {
	id, err := wire.ParseID("id", r.PathValue("id"))
	if err == nil && r.PostFormValue("confirm") != "yes" {
		err = apperr.InvalidField("confirm", "Tick the confirmation box to grant a trial")
	}
	var t domain.Trial
	if err == nil {
		t, err = c.lifecycle.Trial(r.Context(), id)
	}
	var parties lifecycle.Parties
	if err == nil {
		parties, err = c.lifecycle.PartiesOf(r.Context(), t)
	}
	if err != nil {
		c.failOnTrial(w, r, err)
		return
	}
	sub := eligibility.Subject{Email: parties.User.Email}
	if r.PostFormValue("scope") == "domain" {
		sub = eligibility.Subject{Domain: eligibility.Normalize(parties.User.Email).Company}
	}
	if _, err := c.eligibility.Grant(r.Context(), actorOf(r), eligibility.GrantRequest{Subject: sub, Note: strings.TrimSpace(r.PostFormValue("note"))}); err != nil {
		c.failOnTrial(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/console/trials/%d?done=%s", id, actionGrant), http.StatusSeeOther)
}

// Can reports whether the trial's state allows the action (State.Actions),
// for the page to offer only those.
func (v trialView) Can(action domain.Action) bool {
	return slices.Contains(v.Trial.State.Actions(), action)
}

// act applies one of a trial's actions, confirmed, with the operator's
// note, through the lifecycle as the admin API does, and shows the trial
// again.
func (c *console) act(w http.ResponseWriter, r *http.Request) {
	id, err := wire.ParseID("id", r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	action := domain.Action(r.PathValue("action"))
	if !slices.Contains(domain.Actions, action) {
		c.fail(w, r, apperr.Errorf(apperr.NotFound, "No such action"))
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.failOnTrial(w, r, apperr.InvalidField("confirm", "Tick the confirmation box to %s the trial", action))
		return
	}
	if err := c.apply(r, id, action); err != nil {
		c.failOnTrial(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/console/trials/%d?done=%s", id, action), http.StatusSeeOther)
}

// apply runs the lifecycle operation an action names.
func (c *console) apply(r *http.Request, id int64, action domain.Action) error {
	ctx, actor, cause := r.Context(), actorOf(r), c.causeOf(r)
	note := lifecycle.WithNote(strings.TrimSpace(r.PostFormValue("note")))
	switch action {
	case domain.ActionMoveExpiration:
		t, err := c.lifecycle.Trial(ctx, id)
		if err != nil {
			return err
		}
		to, err := newExpiration(t.ExpirationDate, r.PostFormValue("days"), r.PostFormValue("date"))
		if err != nil {
			return err
		}
		return c.lifecycle.UpdateTrial(ctx, actor, id, lifecycle.UpdateTrialRequest{ExpirationDate: &to}, cause, note)
	case domain.ActionUpgrade:
		return c.lifecycle.Upgrade(ctx, actor, id, cause, note)
	case domain.ActionDelete:
		return c.lifecycle.DeleteTrialNow(ctx, actor, id, cause, note)
	default: // domain.ActionRestore
		t, err := c.lifecycle.Trial(ctx, id)
		if err != nil {
			return err
		}
		return c.lifecycle.RestoreOrganization(ctx, actor, t.OrganizationID, cause, note)
	}
}

// newExpiration reads the expiration form: +N (or -N) days from the
// current date, or a date (YYYY-MM-DD) at the current time of day, UTC.
func newExpiration(current time.Time, days, date string) (time.Time, error) {
	days, date = strings.TrimSpace(days), strings.TrimSpace(date)
	switch {
	case days != "":
		n, err := formDays(days)
		if err != nil || n == 0 {
			return time.Time{}, apperr.InvalidField("days", "days must be a whole number of days other than 0, such as 7 or -3")
		}
		return current.AddDate(0, 0, n), nil
	case date != "":
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return time.Time{}, apperr.InvalidField("date", "date must be a date such as 2026-07-01")
		}
		c := current.UTC()
		return time.Date(d.Year(), d.Month(), d.Day(), c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), time.UTC), nil
	}
	return time.Time{}, apperr.InvalidField("days", "Give a number of days or a date")
}

// formDays reads a form's number of days, with or without its sign.
func formDays(s string) (int, error) {
	return strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(s), "+"))
}

// failOnTrial shows the trial again with the action's error above it.
func (c *console) failOnTrial(w http.ResponseWriter, r *http.Request, err error) {
	v, verr := c.trialView(r)
	if verr != nil {
		c.fail(w, r, err)
		return
	}
	status, msg := c.host.Describe(w, r, err)
	c.render(w, r, status, "trial", page{Title: fmt.Sprintf("Trial %d", v.Trial.ID), Data: v, Error: msg})
}

// upcomingView is the upcoming page: the window and what falls due in it.
type upcomingView struct {
	Within string
	Counts []domain.UpcomingCount
	Totals map[string]int64
}

// upcoming shows the transitions due within 24 hours or 7 days.
func (c *console) upcoming(w http.ResponseWriter, r *http.Request) {
	within := r.URL.Query().Get("within")
	windows := map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}
	d, ok := windows[within]
	if !ok {
		within, d = "24h", windows["24h"]
	}
	counts, err := c.lifecycle.UpcomingTransitions(r.Context(), d)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := upcomingView{Within: within, Counts: counts, Totals: map[string]int64{}}
	for _, n := range counts {
		v.Totals[n.Kind] += n.N
	}
	c.render(w, r, http.StatusOK, "upcoming", page{Title: "Upcoming transitions", Data: v})
}

// emailView is a trial e-mail's preview.
type emailView struct {
	TrialID  int64
	Name     string
	Names    []string
	Rendered emails.Rendered
}

// emailPreview shows a notice e-mail as the trial's user would get it now.
func (c *console) emailPreview(w http.ResponseWriter, r *http.Request) {
	id, err := wire.ParseID("id", r.PathValue("id"))
	if err == nil {
		var v emailView
		v.Rendered, err = c.lifecycle.PreviewNotice(r.Context(), r.PathValue("name"), id)
		if err == nil {
			v.TrialID, v.Name, v.Names = id, r.PathValue("name"), emails.Names
			c.render(w, r, http.StatusOK, "email", page{Title: "E-mail " + v.Name + " of trial " + r.PathValue("id"), Data: v})
			return
		}
	}
	c.fail(w, r, err)
}
