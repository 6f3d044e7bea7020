package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/wire"
)

// clockList is the test clocks' page.
type clockList struct {
	Clocks []domain.TestClock
	// Advancing says a clock is on its way, so the page reloads itself
	// until it is not: the operator watches the status without a script.
	Advancing bool
}

// testClocksPage lists the clocks, with a form to create one and, on each,
// forms to advance and delete it.
func (c *console) testClocksPage(w http.ResponseWriter, r *http.Request) {
	c.renderClocks(w, r, http.StatusOK, page{Flash: clockFlash(r.URL.Query().Get("done"))})
}

func (c *console) renderClocks(w http.ResponseWriter, r *http.Request, status int, p page) {
	clocks, err := c.lifecycle.TestClocks(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	l := clockList{Clocks: clocks}
	for _, clk := range clocks {
		l.Advancing = l.Advancing || clk.Status == domain.ClockAdvancing
	}
	p.Title, p.Data = "Test clocks", l
	c.render(w, r, status, "testclocks", p)
}

// clockFlash says what the last action did.
func clockFlash(done string) string {
	return map[string]string{
		"create": "Test clock created.", "advance": "Advancing: the page follows the clock until it is ready.",
		"delete": "Test clock deleted, with its trials.",
	}[done]
}

// createTestClock creates a clock from the form's name and time (UTC).
func (c *console) createTestClock(w http.ResponseWriter, r *http.Request) {
	at, err := formTime(r.PostFormValue("frozenTime"))
	if err == nil {
		_, err = c.lifecycle.CreateTestClock(r.Context(), lifecycle.NewTestClock{Name: r.PostFormValue("name"), FrozenTime: at})
	}
	if err != nil {
		c.failOnClocks(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/test-clocks?done=create", http.StatusSeeOther)
}

// actOnTestClock advances (by days, or to a time) or deletes a clock.
func (c *console) actOnTestClock(w http.ResponseWriter, r *http.Request) {
	id, err := wire.ParseID("id", r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	action := r.PathValue("action")
	switch action {
	case "advance":
		err = c.advanceTestClock(r, id)
	case "delete":
		if r.PostFormValue("confirm") != "yes" {
			err = apperr.InvalidField("confirm", "Tick the confirmation box to delete the clock and its trials")
		} else {
			err = c.lifecycle.DeleteTestClock(r.Context(), id)
		}
	default:
		err = apperr.Errorf(apperr.NotFound, "No such action")
	}
	if err != nil {
		c.failOnClocks(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/console/test-clocks?done=%s", action), http.StatusSeeOther)
}

// advanceTestClock moves clock id by the form's days, or to its time.
func (c *console) advanceTestClock(r *http.Request, id int64) error {
	clk, err := c.lifecycle.TestClock(r.Context(), id)
	if err != nil {
		return err
	}
	to, err := advanceTarget(clk.FrozenTime, r.PostFormValue("days"), r.PostFormValue("frozenTime"))
	if err != nil {
		return err
	}
	_, err = c.lifecycle.AdvanceTestClock(r.Context(), id, to)
	return err
}

// advanceTarget is where an advance goes: days after from, or the time.
func advanceTarget(from time.Time, days, at string) (time.Time, error) {
	if strings.TrimSpace(days) != "" {
		n, err := formDays(days)
		if err != nil || n <= 0 {
			return time.Time{}, apperr.InvalidField("days", "days must be a whole number of days, such as 15")
		}
		return from.AddDate(0, 0, n), nil
	}
	return formTime(at)
}

// formTime reads a form's date and time, which the console shows and takes
// in UTC (a datetime-local field's value, or RFC 3339).
func formTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, apperr.InvalidField("frozenTime", "Give a date and time (UTC) such as 2031-01-01T00:00")
}

// failOnClocks shows the clocks again with the action's error above them.
func (c *console) failOnClocks(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := c.host.Describe(w, r, err)
	c.renderClocks(w, r, status, page{Error: msg})
}
