package wire

import "github.com/trialsd/trialsd/internal/domain"

// EnterpriseTrial is the contract's EnterpriseTrial.
type EnterpriseTrial struct {
	ID             int64   `json:"id"`
	UserID         int64   `json:"userId"`
	OrganizationID int64   `json:"organizationId"`
	Created        string  `json:"created"`
	ExpirationDate string  `json:"expirationDate"`
	Notes          *string `json:"notes,omitempty"`
	ExpiredDate    *string `json:"expiredDate"`
	DeletedDate    *string `json:"deletedDate"`
	UpgradedDate   *string `json:"upgradedDate"`
	// TestClockID is the test clock the trial lives on; null for a trial
	// on real time.
	TestClockID *int64 `json:"testClockId"`
}

// Trial renders a trial in the contract's shape.
func Trial(t domain.Trial) EnterpriseTrial {
	return EnterpriseTrial{
		ID: t.ID, UserID: t.UserID, OrganizationID: t.OrganizationID,
		Created: Format(t.CreatedAt), ExpirationDate: Format(t.ExpirationDate), Notes: t.Notes,
		ExpiredDate:  FormatNullable(t.ExpiredDate),
		DeletedDate:  FormatNullable(t.DeletedDate),
		UpgradedDate: FormatNullable(t.UpgradedDate),
		TestClockID:  t.TestClockID,
	}
}

// TestClock is a test clock as the API, the CLI and the clock's webhooks
// show it.
type TestClock struct {
	ID           int64   `json:"id"`
	Name         string  `json:"name"`
	FrozenTime   string  `json:"frozenTime"`
	Status       string  `json:"status"`
	TargetTime   *string `json:"targetTime"`
	CreatedAt    string  `json:"createdAt"`
	DeletesAfter string  `json:"deletesAfter"`
}

// Clock renders a test clock.
func Clock(c domain.TestClock) TestClock {
	return TestClock{
		ID: c.ID, Name: c.Name, FrozenTime: Format(c.FrozenTime), Status: string(c.Status),
		TargetTime: FormatNullable(c.Target), CreatedAt: Format(c.CreatedAt), DeletesAfter: Format(c.DeletesAfter),
	}
}
