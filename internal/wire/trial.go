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
