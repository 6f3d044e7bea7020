package lifecycle

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// UpdateTrialRequest is adminUpdateTrial's body: either field may be absent.
type UpdateTrialRequest struct {
	ExpirationDate *time.Time
	Notes          *string
}

// UpdateTrial changes a trial's notes and moves its expiration date. Moving
// the date moves the pending transitions (River cannot move a job, so they
// are cancelled and enqueued anew in one transaction); extending an expired
// trial re-activates it; a date in the past expires it now. The date of an
// upgraded or deleted trial cannot change.
func (s *Service) UpdateTrial(ctx context.Context, actor Actor, trialID int64, req UpdateTrialRequest, cause string) error {
	now := s.now()
	var newDate time.Time
	if req.ExpirationDate != nil {
		newDate = req.ExpirationDate.UTC().Truncate(time.Millisecond)
		if newDate.After(now.Add(MaxTrialLength)) {
			return apperr.InvalidField("expirationDate", "expirationDate may be at most 10 years ahead")
		}
	}
	if req.Notes != nil && len(*req.Notes) > maxNotesLength {
		return apperr.InvalidField("notes", "notes may be at most %d characters", maxNotesLength)
	}
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		t, err := lockTrial(ctx, q, trialID)
		if err != nil {
			return err
		}
		if req.Notes != nil {
			if err := q.SetTrialNotes(ctx, t.ID, req.Notes); err != nil {
				return err
			}
		}
		if req.ExpirationDate == nil || newDate.Equal(t.ExpirationDate) {
			return nil
		}
		if t.State == store.StateUpgraded || t.State == store.StateDeleted {
			return apperr.Errorf(apperr.Conflict, "Trial %d is %s; its expiration date cannot change", trialID, t.State)
		}
		return s.moveExpiration(ctx, tx, q, &t, newDate, now, actor.String(), cause)
	})
}

// moveExpiration moves an active or expired trial's expiration date.
func (s *Service) moveExpiration(ctx context.Context, tx pgx.Tx, q *store.Queries, t *store.Trial, to, now time.Time, actor, cause string) error {
	from := t.ExpirationDate
	kind := EventExtended
	if to.Before(from) {
		kind = EventShortened
	}
	t.ExpirationDate = to
	reactivate := t.State == store.StateExpired && to.After(now)
	if reactivate {
		t.ExpiredDate, t.GraceEndsAt = nil, nil
		if err := q.SetEnterpriseFeatures(ctx, t.OrganizationID, true); err != nil {
			return err
		}
	}
	if err := setDates(ctx, q, t); err != nil {
		return err
	}
	if err := s.record(ctx, tx, *t, kind, now, actor, cause, map[string]any{
		"from": from, "to": to, "reactivated": reactivate,
	}); err != nil {
		return err
	}
	if t.State != store.StateActive {
		// Still expired (a new date in the past): its Delete stays as it was.
		return nil
	}
	if !to.After(now) {
		if err := s.cancelSchedule(ctx, tx, q, t); err != nil {
			return err
		}
		return s.applyExpire(ctx, tx, q, t, now, actor, cause)
	}
	return s.reschedule(ctx, tx, q, t, nil)
}
