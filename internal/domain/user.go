package domain

import "time"

// User is an account as the rest of trialsd sees it: who a trial is for,
// who an API key or a JWT authenticates. Its password's hash and its
// tokens' version stay in the store and the accounts service.
type User struct {
	ID            int64
	PublicID      string
	Username      string
	Email         string
	Name          string
	IsAdmin       bool
	EmailVerified bool
	Plan          Plan
	PlanState     PlanState
	CreatedAt     time.Time
	UpdatedAt     time.Time
}
