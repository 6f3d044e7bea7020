package domain

import "time"

// TrialKey is a trial's place in the console's list, which is sorted by
// expiration date and then id: a page starts after the key of the last
// row of the one before (keyset pagination), so page 1000 costs what page
// 1 does.
type TrialKey struct {
	ExpirationDate time.Time
	ID             int64
}

// TrialSearch narrows and pages the console's trial list.
type TrialSearch struct {
	// State is "" for any.
	State State
	// Query matches a trial id, or a user's e-mail address or username,
	// or an organization's name, whole and in any case; "" for any. Whole
	// matches are what the indexes answer in one probe at any size.
	Query string
	// After is the key the page starts after; nil for the first page.
	After *TrialKey
	Limit int
}

// TrialListing is a trial with the names the console shows beside it.
type TrialListing struct {
	Trial
	Username, UserEmail, OrganizationName string
}

// Key is the listing's place in the list.
func (l TrialListing) Key() TrialKey { return TrialKey{ExpirationDate: l.ExpirationDate, ID: l.ID} }

// UpcomingCount is how many jobs of a kind fall due in an hour.
type UpcomingCount struct {
	Hour time.Time
	Kind string
	N    int64
}
