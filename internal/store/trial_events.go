package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// InsertTrialEvent appends an event to a trial's history. data may be nil.
func (q *Queries) InsertTrialEvent(ctx context.Context, e domain.Event) (int64, error) {
	data := e.Data
	if data == nil {
		data = json.RawMessage(`{}`)
	}
	id, err := q.gen.InsertTrialEvent(ctx, dbsqlc.InsertTrialEventParams{
		TrialID: e.TrialID, Kind: e.Kind, At: e.At, Actor: e.Actor, Cause: e.Cause, Data: data})
	if err != nil {
		return 0, fmt.Errorf("inserting %s event of trial %d: %w", e.Kind, e.TrialID, err)
	}
	return id, nil
}

// TrialEvents returns a trial's whole history, oldest first. A history has
// no bound a reader controls: what serves it to a caller pages it
// (TrialEventsAfter, TrialEventsBefore).
func (q *Queries) TrialEvents(ctx context.Context, trialID int64) ([]domain.Event, error) {
	rows, err := q.gen.TrialEvents(ctx, trialID)
	return eventsOf(rows, err, trialID)
}

// TrialEventsAfter returns up to limit events of a trial's history with an
// id above after, oldest first: a page of the history in its own order,
// whose last id is the next page's after.
func (q *Queries) TrialEventsAfter(ctx context.Context, trialID, after int64, limit int) ([]domain.Event, error) {
	rows, err := q.gen.TrialEventsAfter(ctx, dbsqlc.TrialEventsAfterParams{TrialID: trialID, After: after, MaxEvents: int32(limit)})
	return eventsOf(rows, err, trialID)
}

// TrialEventsBefore returns up to limit events of a trial's history with an
// id below before (0: from the newest), newest first: a page of the
// timeline, whose last id is the next, older, page's before.
func (q *Queries) TrialEventsBefore(ctx context.Context, trialID, before int64, limit int) ([]domain.Event, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := q.gen.TrialEventsBefore(ctx, dbsqlc.TrialEventsBeforeParams{TrialID: trialID, Before: before, MaxEvents: int32(limit)})
	return eventsOf(rows, err, trialID)
}

// CountTrialEventsSince counts a trial's events of kind at or after since
// (the trial's time: its test clock's, when it has one), so a caller can
// bound how many a user adds in a period.
func (q *Queries) CountTrialEventsSince(ctx context.Context, trialID int64, kind string, since time.Time) (int, error) {
	n, err := q.gen.CountTrialEventsSince(ctx, dbsqlc.CountTrialEventsSinceParams{TrialID: trialID, Kind: kind, Since: since})
	if err != nil {
		return 0, fmt.Errorf("counting %s events of trial %d: %w", kind, trialID, err)
	}
	return int(n), nil
}

// eventsOf maps trial_events rows, which hold the domain's Event field
// for field.
func eventsOf(rows []dbsqlc.TrialEvent, err error, trialID int64) ([]domain.Event, error) {
	return mapRows(rows, err, fmt.Sprintf("listing events of trial %d", trialID), func(r dbsqlc.TrialEvent) domain.Event { return domain.Event(r) })
}

// HasTrialEvent reports whether the trial's history already holds an event
// of kind whose data contains data, so a retried job records nothing twice.
func (q *Queries) HasTrialEvent(ctx context.Context, trialID int64, kind string, data any) (bool, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("encoding event filter: %w", err)
	}
	ok, err := q.gen.HasTrialEvent(ctx, dbsqlc.HasTrialEventParams{TrialID: trialID, Kind: kind, Data: raw})
	if err != nil {
		return false, fmt.Errorf("looking up %s event of trial %d: %w", kind, trialID, err)
	}
	return ok, nil
}

// InsertTrialEvents appends one event to each of several trials' histories
// in one statement and sets each event's ID. Each event must be of a
// different trial: the ids come back keyed by trial.
func (q *Queries) InsertTrialEvents(ctx context.Context, events []domain.Event) error {
	trialIDs := make([]int64, len(events))
	kinds, actors, causes := make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
	ats, data := make([]time.Time, len(events)), make([]json.RawMessage, len(events))
	for i, e := range events {
		trialIDs[i], kinds[i], ats[i], actors[i], causes[i], data[i] = e.TrialID, e.Kind, e.At, e.Actor, e.Cause, e.Data
		if e.Data == nil {
			data[i] = json.RawMessage(`{}`)
		}
	}
	rows, err := q.gen.InsertTrialEvents(ctx, dbsqlc.InsertTrialEventsParams{
		TrialIds: trialIDs, Kinds: kinds, Ats: ats, Actors: actors, Causes: causes, Data: data})
	if err != nil {
		return fmt.Errorf("inserting %d events: %w", len(events), err)
	}
	ids := make(map[int64]int64, len(events))
	for _, r := range rows {
		ids[r.TrialID] = r.ID
	}
	for i := range events {
		events[i].ID = ids[events[i].TrialID]
	}
	return nil
}

// TrialEventSequence is the place of event id in its trial's history,
// counting from 1: it grows with each event of the trial, so a webhook
// receiver can tell a late delivery from a newer one. Events are recorded
// under their trial's lock, so the count is stable once the event commits.
func (q *Queries) TrialEventSequence(ctx context.Context, trialID, id int64) (int64, error) {
	n, err := q.gen.TrialEventSequence(ctx, dbsqlc.TrialEventSequenceParams{TrialID: trialID, ID: id})
	if err != nil {
		return 0, fmt.Errorf("numbering event %d of trial %d: %w", id, trialID, err)
	}
	return n, nil
}
