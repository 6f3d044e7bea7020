// Package eligibility decides who may start a trial: one trial per
// person (their normalized address), a company domain's limits (active at
// once, started within a window), no disposable addresses, and the admins'
// grants that lift them. The lifecycle asks Admit in the transaction that
// creates a trial, so twenty parallel sign-ups from one company cannot all
// pass; the history it writes outlives the trial (a tombstone after the
// purge), so deleting an account is no way to a second trial.
package eligibility

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/store"
)

// refusals are each reason's error: its v2 name and what the person
// should do. None names anybody else's address or account.
var refusals = map[string]struct{ name, message string }{
	domain.RefusedAddressUsed: {"TrialAlreadyUsed",
		"This e-mail address has already had an enterprise trial; contact sales to continue."},
	domain.RefusedDomainActive: {"CompanyTrialActive",
		"Your company already has an active trial; ask its admin to add you, or contact sales."},
	domain.RefusedDomainLimit: {"CompanyTrialLimit",
		"Your company has had all the trials it can have for now; contact sales to continue."},
	domain.RefusedDisposable: {"DisposableEmail",
		"Please use your company e-mail address; disposable addresses cannot start a trial."},
}

// GenericRefusal is what an anonymous pre-flight answers for any refusal.
const GenericRefusal = "This address cannot start a trial; contact sales to continue."

// Refusal is the error of a refused trial start: a conflict, named for v2.
func Refusal(reason string) error {
	r := refusals[reason]
	return apperr.WithReason(apperr.Conflict, r.name, "%s", r.message)
}

// ReasonOf returns the refusal reason of err, or "" when err is no refusal.
func ReasonOf(err error) string {
	name := apperr.ReasonOf(err)
	for reason, r := range refusals {
		if r.name == name {
			return reason
		}
	}
	return ""
}

// Observer hears of each refusal (the daemon's metrics).
type Observer interface {
	TrialRefused(reason string)
}

// Deps are what the rules are built on.
type Deps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Config config.Eligibility
	// FreeEmailDomains are no company's: the domain limits skip them
	// (signup.free_email_domains).
	FreeEmailDomains []string
	// JWTSecret keys the addresses' hash when Config.HistoryKey is empty.
	JWTSecret string
	Logger    *slog.Logger
	// Observer hears of refusals; nil: nobody.
	Observer Observer
}

// Service holds the rules and the admins' operations on them.
type Service struct {
	pool       *pgxpool.Pool
	clock      clock.Clock
	cfg        config.Eligibility
	free       map[string]bool
	exempt     map[string]bool
	disposable map[string]bool
	key        []byte
	// keyed says the key comes from a secret: an operator command run
	// without one would hash addresses unlike the daemon.
	keyed    bool
	logger   *slog.Logger
	observer Observer
}

// New returns the eligibility rules of d.
func New(d Deps) *Service {
	secret := d.Config.HistoryKey
	if secret == "" {
		secret = d.JWTSecret
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("trialsd eligibility history v1"))
	s := &Service{
		pool: d.Pool, clock: d.Clock, cfg: d.Config, key: mac.Sum(nil), keyed: secret != "", logger: d.Logger, observer: d.Observer,
		free: set(d.FreeEmailDomains), exempt: companies(d.Config.ExemptDomains),
		disposable: map[string]bool{},
	}
	if d.Config.BlockDisposable {
		s.disposable = disposableDomains(d.Config.DisposableAdd, d.Config.DisposableRemove)
	}
	return s
}

// companies are the company domains of domains: an exempt eu.acme.com
// exempts acme.com, the company its addresses count under.
func companies(domains []string) map[string]bool {
	m := make(map[string]bool, len(domains))
	for _, d := range domains {
		m[Normalize("x@"+d).Company] = true
	}
	return m
}

func set(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}

// hash is the keyed hash of a normalized address, all the history keeps
// of it.
func (s *Service) hash(a Address) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(a.Normalized))
	return mac.Sum(nil)
}

// Limits are the domain limits that apply to one company domain; 0 is no
// limit.
type Limits struct {
	Active, Trials int
	Window         time.Duration
	// Source says where they come from: "default", "exempt" (config),
	// "free-mail" (no company's), "admin" (set through the API), or "off"
	// (no rule is on, so none applies).
	Source string
}

// WindowDays is Window in whole days, as the API and the console show it.
func (l Limits) WindowDays() int { return int(l.Window.Hours() / 24) }

// none says no domain limit applies: no count of the domain can refuse.
func (l Limits) none() bool { return l.Active == 0 && l.Trials == 0 }

// limits are the domain limits of company: an admin's own, else none for
// an exempt or free-mail domain, else the configured ones.
func (s *Service) limits(ctx context.Context, q *store.Queries, company string) (Limits, error) {
	l := Limits{Active: s.cfg.ActivePerDomain, Trials: s.cfg.TrialsPerDomain, Window: s.cfg.DomainWindow, Source: "default"}
	own, err := q.EligibilityDomainLimits(ctx, company)
	switch {
	case err == nil:
		l.Active, l.Trials, l.Source = own.Active, own.Trials, "admin"
	case !errors.Is(err, store.ErrNotFound):
		return Limits{}, err
	case s.exempt[company]:
		l.Active, l.Trials, l.Source = 0, 0, "exempt"
	case s.free[company]:
		l.Active, l.Trials, l.Source = 0, 0, "free-mail"
	}
	return l, nil
}

// Counts are what the rules count for one address and its company domain.
type Counts struct {
	// AddressTrials are the address's trials ever, tombstones included.
	AddressTrials int
	// DomainActive are the domain's trials in state active now.
	DomainActive int
	// DomainRecent are the domain's trials started within the window.
	DomainRecent int
}

// verdict is what the rules say of one address now.
type verdict struct {
	Address Address
	// Reason is the first rule that refuses, "" when none does.
	Reason string
	Limits Limits
	Counts Counts
}

// question is what judge is asked: an address, at an instant, of real
// time or of a test clock, under its domain's limits.
type question struct {
	addr Address
	now  time.Time
	// withAddress includes the rule of the address itself.
	withAddress bool
	testClockID *int64
	limits      Limits
}

// judge applies the rules to the question's counts, cheapest first.
func (s *Service) judge(ctx context.Context, q *store.Queries, qu question) (verdict, error) {
	a := qu.addr
	v := verdict{Address: a, Limits: qu.limits}
	if isListed(s.disposable, a.Host) {
		v.Reason = domain.RefusedDisposable
		return v, nil
	}
	c := store.CountsOf{Domain: a.Company, Since: qu.now.Add(-v.Limits.Window), TestClockID: qu.testClockID}
	if qu.withAddress {
		c.AddressHash = s.hash(a)
	}
	counts, err := q.EligibilityCounts(ctx, c)
	if err != nil {
		return verdict{}, err
	}
	v.Counts = Counts(counts)
	switch {
	case qu.withAddress && s.cfg.OnePerAddress && v.Counts.AddressTrials > 0:
		v.Reason = domain.RefusedAddressUsed
	case v.Limits.Active > 0 && v.Counts.DomainActive >= v.Limits.Active:
		v.Reason = domain.RefusedDomainActive
	case v.Limits.Trials > 0 && v.Counts.DomainRecent >= v.Limits.Trials:
		v.Reason = domain.RefusedDomainLimit
	}
	return v, nil
}

// off says no rule is on: no trial start is checked (nor waits for a
// lock), and an admin's own limits for a domain are not applied either;
// the history is still written. A nil Service is off.
func (s *Service) off() bool {
	if s == nil {
		return true
	}
	c := s.cfg
	return !c.OnePerAddress && c.ActivePerDomain == 0 && c.TrialsPerDomain == 0 && !c.BlockDisposable
}

// domainRule says reason is one of the domain's limits, which a grant to
// the domain lifts; a grant to the address lifts every rule.
func domainRule(reason string) bool {
	return slices.Contains([]string{domain.RefusedDomainActive, domain.RefusedDomainLimit}, reason)
}

// grantFor asks for the unused grant that lifts reason: the address's
// (when hash is set) or the domain's.
func grantFor(hash []byte, company, reason string) store.GrantClaim {
	return store.GrantClaim{AddressHash: hash, Domain: company, DomainGrants: domainRule(reason)}
}

// Start is a trial start to check.
type Start struct {
	// Email is the address of whose trial it is, valid.
	Email string
	// Now is the trial's instant: the daemon's, or its test clock's.
	Now time.Time
	// TestClockID puts the start on a test clock: a rehearsal, counted
	// against the clock's other trials only, and no admin's grant is
	// spent on it.
	TestClockID *int64
}

// Admission is a trial start the rules let through, to be recorded with
// the trial it admitted.
type Admission struct {
	hash        []byte
	company     string
	testClockID *int64
	// Grant is the admin's grant the start used; nil: the rules passed.
	Grant *Grant
}

// Admit checks st in tx, the transaction that creates the trial: it locks
// the starts its rules count until that transaction ends, applies the
// rules and, when one refuses, uses an admin's grant that lifts it, or
// returns the Refusal. Record the trial it admits with Record in the same
// transaction. A nil Service admits everyone. tx must be READ COMMITTED
// (store.InTx's), so the counts after the lock see the trials of the
// starts that held it before.
func (s *Service) Admit(ctx context.Context, tx pgx.Tx, st Start) (Admission, error) {
	if s.off() {
		return s.admission(st), nil
	}
	q := store.New(tx)
	adm, a := s.admission(st), Normalize(st.Email)
	l, err := s.limits(ctx, q, a.Company)
	if err != nil {
		return Admission{}, err
	}
	// A domain without limits has only its addresses' own rule to keep:
	// its starts lock their address, so a free-mail domain's do not queue.
	key := "domain:" + a.Company
	if l.none() {
		key = "address:" + hex.EncodeToString(adm.hash)
	}
	if err := q.LockEligibility(ctx, key); err != nil {
		return Admission{}, err
	}
	v, err := s.judge(ctx, q, question{addr: a, now: st.Now, withAddress: true, testClockID: st.TestClockID, limits: l})
	if err != nil {
		return Admission{}, err
	}
	if v.Reason == "" {
		return adm, nil
	}
	if st.TestClockID == nil {
		claim := grantFor(adm.hash, a.Company, v.Reason)
		claim.Now = st.Now
		g, ok, err := q.ClaimEligibilityGrant(ctx, claim)
		if err != nil {
			return Admission{}, err
		}
		if ok {
			granted := grantOf(g)
			adm.Grant = &granted
			return adm, nil
		}
	}
	return Admission{}, s.refuse(ctx, st, a.Company, v.Reason)
}

// admission is st's, before any rule: what Record writes of it.
func (s *Service) admission(st Start) Admission {
	if s == nil {
		return Admission{}
	}
	a := Normalize(st.Email)
	return Admission{hash: s.hash(a), company: a.Company, testClockID: st.TestClockID}
}

// refuse logs and counts a refused start and returns its Refusal.
func (s *Service) refuse(ctx context.Context, st Start, company, reason string) error {
	attrs := []any{"reason", reason, "email", logging.MaskEmail(st.Email), "domain", company}
	if st.TestClockID != nil {
		attrs = append(attrs, "test_clock_id", *st.TestClockID)
	}
	s.logger.InfoContext(ctx, "trial refused", attrs...)
	if s.observer != nil {
		s.observer.TrialRefused(reason)
	}
	return Refusal(reason)
}

// Record writes the trial Admit admitted, started at startedAt, to the
// history, in the same transaction; a nil Service records nothing.
func (s *Service) Record(ctx context.Context, tx pgx.Tx, adm Admission, trialID int64, startedAt time.Time) error {
	if s == nil {
		return nil
	}
	h := store.TrialHistory{TrialID: trialID, AddressHash: adm.hash, Domain: adm.company, StartedAt: startedAt, TestClockID: adm.testClockID}
	if adm.Grant != nil {
		h.GrantID = &adm.Grant.ID
	}
	return store.New(tx).InsertTrialHistory(ctx, h)
}
