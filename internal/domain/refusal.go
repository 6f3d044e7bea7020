package domain

// The reasons the eligibility rules refuse a trial: the label of
// trialsd_trial_refusals_total, of the refusal's log line and of the
// pre-flight's answer to an admin.
const (
	// RefusedAddressUsed: the normalized address has had its trial.
	RefusedAddressUsed = "address_used"
	// RefusedDomainActive: the company domain has its active trials.
	RefusedDomainActive = "domain_active"
	// RefusedDomainLimit: the company domain has had its trials within
	// the window.
	RefusedDomainLimit = "domain_limit"
	// RefusedDisposable: the address is at a disposable e-mail domain.
	RefusedDisposable = "disposable"
)

// RefusalReasons are every refusal reason, for the metrics to start at
// zero.
var RefusalReasons = []string{RefusedAddressUsed, RefusedDomainActive, RefusedDomainLimit, RefusedDisposable}
