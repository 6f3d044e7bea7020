package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// LockEligibility serialises the trial starts of one key until the
// transaction ends (an advisory lock, taken after the user and the test
// clock and before any trial, in the lock order): the counts the rules
// read cannot change before the trial they admit is written. The key is
// the company domain whose limits are counted, or the address's hash when
// its domain has none, so free-mail starts do not queue behind each other.
func (q *Queries) LockEligibility(ctx context.Context, key string) error {
	if err := q.gen.LockEligibility(ctx, key); err != nil {
		return fmt.Errorf("locking eligibility of %s: %w", key, err)
	}
	return nil
}

// EligibilityCounts are what the rules count for one address and its
// company domain.
type EligibilityCounts struct {
	// AddressTrials are the address's trials ever, tombstones included.
	AddressTrials int
	// DomainActive are the domain's trials in state active now.
	DomainActive int
	// DomainRecent are the domain's trials started after the window's
	// start.
	DomainRecent int
}

// CountsOf asks EligibilityCounts about an address and its company
// domain.
type CountsOf struct {
	// AddressHash is the address's; nil: count no address.
	AddressHash []byte
	Domain      string
	// Since is the start of the domain's window.
	Since time.Time
	// TestClockID counts the trials of that test clock; nil: of real
	// time.
	TestClockID *int64
}

// EligibilityCounts counts what c asks for.
func (q *Queries) EligibilityCounts(ctx context.Context, c CountsOf) (EligibilityCounts, error) {
	r, err := q.gen.EligibilityCounts(ctx, dbsqlc.EligibilityCountsParams{
		AddressHash: c.AddressHash, Domain: c.Domain, Since: c.Since, TestClockID: c.TestClockID,
	})
	if err != nil {
		return EligibilityCounts{}, fmt.Errorf("counting trials of %s: %w", c.Domain, err)
	}
	return EligibilityCounts{AddressTrials: int(r.AddressTrials), DomainActive: int(r.DomainActive), DomainRecent: int(r.DomainRecent)}, nil
}

// DomainLimits are an admin's own limits for a company domain; 0 is no
// limit.
type DomainLimits struct {
	Domain string
	Active int
	Trials int
	Note   string
	SetBy  string
	SetAt  time.Time
}

// EligibilityDomainLimits returns the domain's own limits, or ErrNotFound
// when it has none.
func (q *Queries) EligibilityDomainLimits(ctx context.Context, companyDomain string) (DomainLimits, error) {
	return mapRow(domainLimitsOf)(q.gen.EligibilityDomainLimits(ctx, companyDomain))
}

func domainLimitsOf(r dbsqlc.EligibilityDomain) DomainLimits {
	return DomainLimits{Domain: r.Domain, Active: int(r.ActiveLimit), Trials: int(r.TrialsLimit), Note: r.Note, SetBy: r.SetBy, SetAt: r.SetAt}
}

// SetEligibilityDomainLimits sets (or replaces) a domain's own limits.
func (q *Queries) SetEligibilityDomainLimits(ctx context.Context, l DomainLimits) error {
	err := q.gen.UpsertEligibilityDomain(ctx, dbsqlc.UpsertEligibilityDomainParams{
		Domain: l.Domain, ActiveLimit: int32(l.Active), TrialsLimit: int32(l.Trials), Note: l.Note, SetBy: l.SetBy, SetAt: l.SetAt,
	})
	if err != nil {
		return fmt.Errorf("setting limits of %s: %w", l.Domain, err)
	}
	return nil
}

// EligibilityGrant is an admin's override: one trial more for an address
// (by its hash) or for anyone at a domain (no hash).
type EligibilityGrant struct {
	ID int64
	// AddressHash is the address's; nil for a grant to the domain.
	AddressHash []byte
	// Domain is the company domain, of the address or granted to.
	Domain string
	// Subject is what an admin reads: the masked address or the domain.
	Subject   string
	Note      string
	GrantedBy string
	GrantedAt time.Time
	TrialID   *int64
	UsedAt    *time.Time
}

func grantOf(r dbsqlc.EligibilityGrant) EligibilityGrant {
	return EligibilityGrant{
		ID: r.ID, AddressHash: r.AddressHash, Domain: r.Domain, Subject: r.Subject, Note: r.Note,
		GrantedBy: r.GrantedBy, GrantedAt: r.GrantedAt, TrialID: r.TrialID, UsedAt: r.UsedAt,
	}
}

// InsertEligibilityGrant records a grant.
func (q *Queries) InsertEligibilityGrant(ctx context.Context, g EligibilityGrant) (EligibilityGrant, error) {
	r, err := q.gen.InsertEligibilityGrant(ctx, dbsqlc.InsertEligibilityGrantParams{
		AddressHash: g.AddressHash, Domain: g.Domain, Subject: g.Subject, Note: g.Note, GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt,
	})
	if err != nil {
		return EligibilityGrant{}, fmt.Errorf("recording grant: %w", err)
	}
	return grantOf(r), nil
}

// GrantClaim asks for an unused grant: the address's, or, when
// DomainGrants, the domain's.
type GrantClaim struct {
	AddressHash  []byte
	Domain       string
	DomainGrants bool
	Now          time.Time
}

// ClaimEligibilityGrant marks the oldest unused grant that c allows as
// used now (an address's before a domain's) and returns it; false: none.
func (q *Queries) ClaimEligibilityGrant(ctx context.Context, c GrantClaim) (EligibilityGrant, bool, error) {
	r, err := q.gen.ClaimEligibilityGrant(ctx, dbsqlc.ClaimEligibilityGrantParams{
		Now: c.Now, AddressHash: c.AddressHash, DomainGrants: c.DomainGrants, Domain: c.Domain,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return EligibilityGrant{}, false, nil
	}
	if err != nil {
		return EligibilityGrant{}, false, fmt.Errorf("claiming a grant: %w", err)
	}
	return grantOf(r), true, nil
}

// UnusedEligibilityGrant returns the grant ClaimEligibilityGrant would
// claim for c, without claiming it; false: none.
func (q *Queries) UnusedEligibilityGrant(ctx context.Context, c GrantClaim) (EligibilityGrant, bool, error) {
	r, err := q.gen.UnusedEligibilityGrant(ctx, dbsqlc.UnusedEligibilityGrantParams{
		AddressHash: c.AddressHash, DomainGrants: c.DomainGrants, Domain: c.Domain,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return EligibilityGrant{}, false, nil
	}
	if err != nil {
		return EligibilityGrant{}, false, fmt.Errorf("reading grants: %w", err)
	}
	return grantOf(r), true, nil
}

// EligibilityGrantsOf returns the latest max grants at companyDomain, to
// its addresses and to itself, newest first.
func (q *Queries) EligibilityGrantsOf(ctx context.Context, companyDomain string, max int) ([]EligibilityGrant, error) {
	rows, err := q.gen.EligibilityGrantsOf(ctx, dbsqlc.EligibilityGrantsOfParams{Domain: companyDomain, MaxRows: int32(max)})
	return mapRows(rows, err, "reading grants", grantOf)
}

// TrialHistory is one trial in the eligibility history: live, or the
// tombstone its purge left.
type TrialHistory struct {
	TrialID     int64
	AddressHash []byte
	Domain      string
	StartedAt   time.Time
	GrantID     *int64
	// TestClockID is the test clock of a rehearsal's trial.
	TestClockID *int64
	// State is the live trial's state; empty once it is purged, when
	// Outcome is its state at the purge.
	State     domain.State
	Outcome   string
	ExpiredAt *time.Time
	DeletedAt *time.Time
	PurgedAt  *time.Time
}

// InsertTrialHistory adds a new trial to the history (a second insert of
// one trial does nothing), marking the grant it used, if any, as used by
// it.
func (q *Queries) InsertTrialHistory(ctx context.Context, h TrialHistory) error {
	err := q.gen.InsertEligibilityHistory(ctx, dbsqlc.InsertEligibilityHistoryParams{
		TrialID: h.TrialID, AddressHash: h.AddressHash, Domain: h.Domain, StartedAt: h.StartedAt, GrantID: h.GrantID,
		TestClockID: h.TestClockID,
	})
	if err != nil {
		return fmt.Errorf("recording trial %d in the eligibility history: %w", h.TrialID, err)
	}
	return nil
}

// HistoryOfDomain returns the domain's latest max trials, newest first.
func (q *Queries) HistoryOfDomain(ctx context.Context, companyDomain string, max int) ([]TrialHistory, error) {
	rows, err := q.gen.EligibilityHistoryOfDomain(ctx, dbsqlc.EligibilityHistoryOfDomainParams{Domain: companyDomain, MaxRows: int32(max)})
	return mapRows(rows, err, "reading the domain's history", func(r dbsqlc.EligibilityHistoryOfDomainRow) TrialHistory {
		return historyOf(r.EligibilityHistory, r.LiveState)
	})
}

func historyOf(h dbsqlc.EligibilityHistory, live string) TrialHistory {
	out := TrialHistory{
		TrialID: h.TrialID, AddressHash: h.AddressHash, Domain: h.Domain, StartedAt: h.StartedAt, GrantID: h.GrantID,
		TestClockID: h.TestClockID, ExpiredAt: h.ExpiredAt, DeletedAt: h.DeletedAt, PurgedAt: h.PurgedAt,
	}
	out.State = domain.State(live)
	if h.Outcome != nil {
		out.Outcome = *h.Outcome
	}
	return out
}

// PruneEligibilityHistory forgets the tombstones purged before before,
// and the grants used before it whose trial's history is gone with them (a
// live trial keeps the grant that let it in); it returns how many
// tombstones went.
func (q *Queries) PruneEligibilityHistory(ctx context.Context, before time.Time) (int64, error) {
	n, err := q.gen.PruneEligibilityHistory(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("pruning the eligibility history: %w", err)
	}
	return n, nil
}

// BackfillTrial is a trial from before the history, with its user's
// address.
type BackfillTrial struct {
	ID        int64
	CreatedAt time.Time
	Email     string
	// TestClockID is the test clock of a rehearsal's trial.
	TestClockID *int64
}

// TrialsToBackfill returns up to max trials after after that predate the
// history and are not in it yet; none once the backfill is done.
func (q *Queries) TrialsToBackfill(ctx context.Context, after int64, max int) ([]BackfillTrial, error) {
	upTo, err := q.gen.EligibilityBackfillUpTo(ctx)
	if err != nil || upTo == 0 {
		return nil, err
	}
	rows, err := q.gen.TrialsToBackfill(ctx, dbsqlc.TrialsToBackfillParams{After: after, UpTo: upTo, MaxRows: int32(max)})
	return mapRows(rows, err, "reading trials to backfill", func(r dbsqlc.TrialsToBackfillRow) BackfillTrial {
		return BackfillTrial{ID: r.ID, CreatedAt: r.CreatedAt, Email: r.Email, TestClockID: r.TestClockID}
	})
}

// EndBackfill records that every trial from before the history is in it.
func (q *Queries) EndBackfill(ctx context.Context) error {
	if err := q.gen.EndEligibilityBackfill(ctx); err != nil {
		return fmt.Errorf("ending the backfill: %w", err)
	}
	return nil
}
