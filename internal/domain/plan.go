package domain

// Plan is a user's plan. A new user is on PlanFree; a Professional sign-up
// starts on PlanProfessional awaiting payment.
type Plan string

// Plans.
const (
	PlanFree         Plan = "free"
	PlanProfessional Plan = "professional"
)

// PlanState is where a user's plan stands: a Professional sign-up awaits
// its first payment, which makes it active; one still unpaid after
// billing.pending_payment_ttl is removed.
type PlanState string

// Plan states.
const (
	PlanActive         PlanState = "active"
	PlanPendingPayment PlanState = "pending_payment"
)
