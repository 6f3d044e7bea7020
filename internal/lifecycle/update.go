package lifecycle

import (
	"context"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/wire"
)

// UpdateTrialRequest is adminUpdateTrial's body: either field may be absent.
type UpdateTrialRequest struct {
	ExpirationDate *time.Time
	Notes          *string
	// KeepActive refuses an ExpirationDate at or before the trial's now
	// instead of expiring the trial at once: for callers, such as the CLI's
	// extend, whose user means a later date and would not expect a typo to
	// end the trial.
	KeepActive bool
}

// ReasonWouldExpire names the error of a KeepActive update whose date is
// not after the trial's now, so that its caller can say how to go ahead.
const ReasonWouldExpire = "would_expire"

// UpdateTrial changes a trial's notes and moves its expiration date. Moving
// the date moves the pending transitions (River cannot move a job, so they
// are cancelled and enqueued anew in one transaction); extending an expired
// trial re-activates it; a date in the past expires it now. The date of an
// upgraded or deleted trial cannot change.
func (s *Service) UpdateTrial(ctx context.Context, actor domain.Actor, trialID int64, req UpdateTrialRequest, cause string, opts ...Option) error {
	var newDate time.Time
	if req.ExpirationDate != nil {
		newDate = domain.Instant(*req.ExpirationDate)
	}
	if err := domain.CheckLength("notes", req.Notes, domain.MaxNotesLength); err != nil {
		return err
	}
	if req.ExpirationDate != nil {
		if err := domain.CheckDate("expirationDate", newDate); err != nil {
			return err
		}
	}
	return s.inChange(ctx, actor, cause, func(c *change) error {
		t, err := c.lockTrial(ctx, trialID)
		if err != nil {
			return err
		}
		// Checked at the trial's now: a test clock's trial by its clock.
		if req.ExpirationDate != nil && newDate.After(c.now.Add(MaxTrialLength)) {
			return apperr.InvalidField("expirationDate", "expirationDate may be at most 10 years ahead")
		}
		if req.KeepActive && req.ExpirationDate != nil && !newDate.After(c.now) {
			e := apperr.InvalidField("expirationDate", "%s is not after the trial's now, %s: it would expire the trial at once",
				wire.Format(newDate), wire.Format(c.now))
			e.Reason = ReasonWouldExpire
			return e
		}
		if req.Notes != nil {
			if err := c.q.SetTrialNotes(ctx, t.ID, req.Notes); err != nil {
				return err
			}
		}
		if req.ExpirationDate == nil || newDate.Equal(t.ExpirationDate) {
			return nil
		}
		if t.State == domain.StateUpgraded || t.State == domain.StateDeleted {
			return apperr.Errorf(apperr.Conflict, "Trial %d is %s; its expiration date cannot change", trialID, t.State)
		}
		return c.moveExpiration(ctx, &t, newDate)
	}, opts...)
}

// moveExpiration moves an active or expired trial's expiration date.
func (c *change) moveExpiration(ctx context.Context, t *domain.Trial, to time.Time) error {
	from := t.ExpirationDate
	kind := domain.EventExtended
	if to.Before(from) {
		kind = domain.EventShortened
	}
	t.ExpirationDate = to
	reactivate := t.State == domain.StateExpired && to.After(c.now)
	if reactivate {
		t.ExpiredDate, t.GraceEndsAt = nil, nil
		if err := c.q.SetEnterpriseFeatures(ctx, t.OrganizationID, true); err != nil {
			return err
		}
	}
	if err := c.setDates(ctx, t); err != nil {
		return err
	}
	if err := c.record(ctx, *t, kind, map[string]any{
		"from": from, "to": to, "reactivated": reactivate,
	}); err != nil {
		return err
	}
	if t.State != domain.StateActive {
		// Still expired (a new date in the past): its Delete stays as it was.
		return nil
	}
	if !to.After(c.now) {
		if err := c.cancelSchedule(ctx, t); err != nil {
			return err
		}
		return c.expire(ctx, t)
	}
	return c.reschedule(ctx, t, nil)
}
