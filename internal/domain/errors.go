package domain

import "github.com/trialsd/trialsd/internal/apperr"

// The conflicts a client sees when a sign-up, an enterprise or a change of
// address takes what another account has: one wording each, whichever path
// found it.
var (
	ErrUsernameTaken = apperr.Errorf(apperr.Conflict, "Username is already taken")
	ErrEmailTaken    = apperr.Errorf(apperr.Conflict, "An account with this e-mail address already exists")
)
