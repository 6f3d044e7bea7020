package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/emails"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
)

// A trial's notices are the e-mails its people get as it goes through its
// life (email.notices): each state has a series, due at points on the
// trial's dates, and one job at a time walks it. The transaction that
// enters a state schedules the series' first notice still ahead; each
// notice's job writes its e-mails to the outbox and schedules the next, in
// one transaction. The job is recorded among the trial's reminders, so the
// change that leaves the state cancels it with the rest, and a notice of
// an old generation never goes out: an extension's new dates get new
// notices, an upgrade ends the series.

// notice is one e-mail of a state's series: its template, and for the
// reminders how long before its date it is due.
type notice struct {
	template string
	before   time.Duration
}

// planned is a notice and when it is due for a trial.
type planned struct {
	notice
	at time.Time
}

// noticeState is the state whose series holds template's notices.
var noticeState = map[string]domain.State{
	emails.Welcome: domain.StateActive, emails.Ending: domain.StateActive,
	emails.Expired: domain.StateExpired, emails.DeletionWarning: domain.StateExpired,
	emails.Deleted: domain.StateDeleted, emails.Upgraded: domain.StateUpgraded,
}

// series is t's notices of its current state, as configured, in the order
// they fall due. The welcome is left out of a trial created already
// expired: the e-mail of its expiry is the one that tells its people
// something.
func (s *Service) series(t domain.Trial) []planned {
	if s.notices == nil {
		return nil
	}
	cfg := s.notices.cfg
	var out []planned
	add := func(n notice, at *time.Time, on bool) {
		if on && at != nil && noticeState[n.template] == t.State {
			out = append(out, planned{n, *at})
		}
	}
	add(notice{template: emails.Welcome}, &t.CreatedAt, cfg.Welcome && t.ExpirationDate.After(t.CreatedAt))
	for _, b := range cfg.EndingBefore {
		add(notice{emails.Ending, b}, ptrTime(t.ExpirationDate.Add(-b)), true)
	}
	add(notice{template: emails.Expired}, t.ExpiredDate, cfg.Expired)
	for _, b := range cfg.DeletionBefore {
		if t.GraceEndsAt != nil {
			add(notice{emails.DeletionWarning, b}, ptrTime(t.GraceEndsAt.Add(-b)), true)
		}
	}
	add(notice{template: emails.Deleted}, t.DeletedDate, cfg.Deleted)
	add(notice{template: emails.Upgraded}, t.UpgradedDate, cfg.Upgraded)
	slices.SortStableFunc(out, func(a, b planned) int { return a.at.Compare(b.at) })
	return out
}

// nextNotice is the first of t's notices after the one done (none: from
// the start of the series) that is not already past: a point that passed
// before the trial reached it, as when a trial is created or moved close
// to its date, is skipped rather than sent late.
func (c *change) nextNotice(t domain.Trial, done *notice) (planned, bool) {
	plan := c.s.series(t)
	if done != nil {
		i := slices.IndexFunc(plan, func(p planned) bool { return p.notice == *done })
		plan = plan[i+1:]
	}
	for _, p := range plan {
		if !p.at.Before(c.now) {
			return p, true
		}
	}
	return planned{}, false
}

// noticeJob is the job of t's next notice after done, when there is one.
func (c *change) noticeJob(t domain.Trial, done *notice) (jobargs.NotifyTrial, time.Time, bool) {
	p, ok := c.nextNotice(t, done)
	if !ok {
		return jobargs.NotifyTrial{}, time.Time{}, false
	}
	return jobargs.NotifyTrial{V: jobargs.Version, TrialID: t.ID, Generation: t.ScheduleGen, Template: p.template, Before: p.before}, p.at, true
}

// scheduleNotice enqueues t's first notice still ahead in its state and
// returns its job's id among ids, for the trial to record.
func (c *change) scheduleNotice(ctx context.Context, t domain.Trial, ids []int64) ([]int64, error) {
	args, at, ok := c.noticeJob(t, nil)
	if !ok {
		return ids, nil
	}
	id, err := c.insert(ctx, args, at)
	if err != nil {
		return nil, err
	}
	return append(ids, id), nil
}

// errNoticeDone says a notice job's work is done already: an earlier
// attempt committed it, and handed over to the next notice.
var errNoticeDone = errors.New("the notice was written already")

// Notify is a notice's job: it writes the notice's e-mails for each
// recipient to the outbox and schedules the trial's next notice, unless
// the trial has left the state or generation the notice belongs to
// (Skipped) or an earlier attempt did it (AlreadyApplied).
func (s *Service) Notify(ctx context.Context, jobID int64, args jobargs.NotifyTrial, cause string) (Result, error) {
	n := notice{template: args.Template, before: args.Before}
	var on bool // the trial's series still holds n: due reads it, apply follows it
	res, err := s.transition(ctx, step{
		trialID: args.TrialID, generation: args.Generation, from: noticeState[n.template], cause: cause,
		due: func(t domain.Trial) time.Time {
			var at time.Time
			at, on = s.noticeAt(t, n)
			return at // zero when switched off since: due, and writes nothing
		},
		apply: func(ctx context.Context, c *change, t *domain.Trial) error {
			if !slices.Contains(t.ReminderJobIDs, jobID) {
				return errNoticeDone
			}
			if on {
				if err := c.writeNotice(ctx, *t, n); err != nil {
					return err
				}
			}
			return c.handOver(ctx, *t, jobID, n)
		},
	})
	if errors.Is(err, errNoticeDone) {
		return Result{Outcome: AlreadyApplied}, nil
	}
	return res, err
}

// noticeAt is when n is due for t, and false when t's series no longer
// holds it (switched off in email.notices since it was scheduled).
func (s *Service) noticeAt(t domain.Trial, n notice) (time.Time, bool) {
	for _, p := range s.series(t) {
		if p.notice == n {
			return p.at, true
		}
	}
	return time.Time{}, false
}

// handOver schedules t's next notice after n and records it in place of
// n's job.
func (c *change) handOver(ctx context.Context, t domain.Trial, jobID int64, n notice) error {
	var next []int64
	if args, at, ok := c.noticeJob(t, &n); ok {
		id, err := c.insert(ctx, args, at)
		if err != nil {
			return err
		}
		next = append(next, id)
	}
	return c.q.ReplaceReminderJob(ctx, t.ID, jobID, next)
}

// reminder says whether a template is a reminder, which a recipient can
// unsubscribe from; the others are service messages about the
// organization's data, which every recipient gets.
func reminder(template string) bool {
	return template == emails.Welcome || template == emails.Ending
}

// writeNotice renders n for each of t's recipients and writes the e-mails
// to the outbox, each under a key of the trial, its generation, the notice
// and the recipient: written twice, it is sent once.
func (c *change) writeNotice(ctx context.Context, t domain.Trial, n notice) error {
	people, err := c.q.NoticeRecipients(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, r := range c.s.notices.recipients(t, people, n) {
		m, err := c.s.notices.render(t, r, n, c.now)
		if err != nil {
			return fmt.Errorf("trial %d's %s e-mail: %w", t.ID, n.template, err)
		}
		if err := c.s.webhooks.EnqueueTrialEmail(ctx, c.tx, t.ID, noticeKey(t, n), m, c.now); err != nil {
			return err
		}
	}
	return nil
}

// noticeKey names n's e-mails of t's generation in the outbox.
func noticeKey(t domain.Trial, n notice) string {
	return fmt.Sprintf("notice:%d:%d:%s:%d", t.ID, t.ScheduleGen, n.template, int64(n.before/time.Second))
}

// Notices renders the trial e-mails: the templates and email.* settings.
type Notices struct {
	templates *emails.Templates
	cfg       config.Notices
	links     config.EmailLinks
	// grace is lifecycle.grace_period, for the deletion date an active
	// trial's e-mails give.
	grace time.Duration
	// domain is the From address's, for the Message-IDs.
	domain string
	unsub  *emails.Unsubscribes
}

// NewNotices loads the templates of email.templates_dir, each parsed and
// rendered against a sample trial: a broken override is an error naming
// its file and line, before the daemon starts. The reminders' unsubscribe
// links are signed by unsub.
func NewNotices(cfg config.Email, grace time.Duration, unsub *emails.Unsubscribes) (*Notices, error) {
	tpl, err := emails.Load(cfg.TemplatesDir)
	if err != nil {
		return nil, err
	}
	return &Notices{templates: tpl, cfg: cfg.Notices, links: cfg.Links, grace: grace, domain: fromDomain(cfg.From), unsub: unsub}, nil
}

// recipients are those of people n goes to: the trial's user and the
// admins as configured, without those who unsubscribed from a reminder.
func (ns *Notices) recipients(t domain.Trial, people []store.Recipient, n notice) []store.Recipient {
	var out []store.Recipient
	for _, p := range people {
		wanted := (p.UserID == t.UserID && ns.cfg.ToUser) || (p.UserID != t.UserID && ns.cfg.ToAdmins)
		if wanted && !(reminder(n.template) && p.RemindersUnsubscribedAt != nil) {
			out = append(out, p)
		}
	}
	return out
}

// render writes n for recipient r of t, dated now.
func (ns *Notices) render(t domain.Trial, r store.Recipient, n notice, now time.Time) (outbox.Email, error) {
	f := emails.Fields{
		Name: r.Name, Organization: r.Organization, Now: now, TrialEnds: t.ExpirationDate,
		DataDeletedOn: t.ExpirationDate.Add(ns.grace),
		UpgradeURL:    ns.links.UpgradeURL, ExportURL: ns.links.ExportURL, Support: ns.links.Support,
	}
	if f.Name == "" {
		f.Name = r.Username
	}
	if t.GraceEndsAt != nil {
		f.DataDeletedOn = *t.GraceEndsAt
	}
	if r.PurgeAt != nil {
		f.PurgeOn = *r.PurgeAt
	}
	var headers []outbox.Header
	if reminder(n.template) {
		// RFC 8058: a mail client's one-click unsubscribe POSTs to the link.
		f.UnsubscribeURL = ns.unsub.URL(r.UserID, r.Email)
		headers = []outbox.Header{
			{Name: "List-Unsubscribe", Value: "<" + f.UnsubscribeURL + ">"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
		}
	}
	out, err := ns.templates.Render(n.template, f)
	if err != nil {
		return outbox.Email{}, err
	}
	sum := sha256.Sum256([]byte(strings.ToLower(r.Email)))
	return outbox.Email{
		To: r.Email, Subject: out.Subject, Body: out.Text, HTML: out.HTML, Date: now, Template: n.template, Headers: headers,
		MessageID: fmt.Sprintf("%s.%s@%s", strings.ReplaceAll(noticeKey(t, n), ":", "."), hex.EncodeToString(sum[:6]), ns.domain),
	}, nil
}

// Unsubscribe is a reminder's one-click unsubscribe: the user its token
// names gets no more reminders (the welcome and the e-mails before the
// expiry); the service messages still reach them. It changes nothing else.
// A token that is not a link of the user at their current address is
// NotFound, the same whether or not the user exists.
func (s *Service) Unsubscribe(ctx context.Context, token string) error {
	notFound := apperr.Errorf(apperr.NotFound, "This unsubscribe link is not valid (any more)")
	userID, ok := emails.UserOf(token)
	if !ok || s.notices == nil {
		return notFound
	}
	q := store.New(s.pool)
	u, err := q.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.notices.unsub.Valid(token, u.ID, u.Email)) {
		return notFound
	}
	if err != nil {
		return err
	}
	changed, err := q.UnsubscribeReminders(ctx, u.ID, u.Email, s.now())
	if err == nil && changed {
		s.logger.InfoContext(ctx, "unsubscribed from trial reminders", "user_id", u.ID)
	}
	return err
}

// fromDomain is the domain of address from, or localhost.
func fromDomain(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			return d
		}
	}
	return "localhost"
}

// PreviewNotice renders the notice template as the trial's user would get
// it now, by the trial's clock (trialID 0: as the sample trial of the
// templates' check gets it). A reminder's unsubscribe link in a preview is
// the user's real one.
func (s *Service) PreviewNotice(ctx context.Context, template string, trialID int64) (emails.Rendered, error) {
	if _, ok := noticeState[template]; !ok || s.notices == nil {
		return emails.Rendered{}, apperr.InvalidField("template", "no e-mail template %q: one of %s", template, strings.Join(emails.Names, ", "))
	}
	if trialID == 0 {
		return s.notices.templates.Render(template, emails.Sample())
	}
	t, err := s.Trial(ctx, trialID)
	if err != nil {
		return emails.Rendered{}, err
	}
	now, err := s.NowOf(ctx, t)
	if err != nil {
		return emails.Rendered{}, err
	}
	people, err := store.New(s.pool).NoticeRecipients(ctx, t.ID)
	if err != nil {
		return emails.Rendered{}, err
	}
	i := slices.IndexFunc(people, func(r store.Recipient) bool { return r.UserID == t.UserID })
	if i < 0 {
		return emails.Rendered{}, apperr.Errorf(apperr.NotFound, "Trial %d has no user to write to", t.ID)
	}
	n := notice{template: template}
	if template == emails.Ending && len(s.notices.cfg.EndingBefore) > 0 {
		n.before = s.notices.cfg.EndingBefore[0]
	}
	m, err := s.notices.render(t, people[i], n, now)
	return emails.Rendered{Subject: m.Subject, Text: m.Body, HTML: m.HTML}, err
}
