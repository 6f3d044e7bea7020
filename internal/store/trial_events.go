package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
)

// InsertTrialEvent appends an event to a trial's history. data may be nil.
func (q *Queries) InsertTrialEvent(ctx context.Context, e domain.Event) (int64, error) {
	data := e.Data
	if data == nil {
		data = json.RawMessage(`{}`)
	}
	var id int64
	err := q.db.QueryRow(ctx, `
		INSERT INTO trial_events (trial_id, kind, at, actor, cause, data)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id`, e.TrialID, e.Kind, e.At, e.Actor, e.Cause, data).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("inserting %s event of trial %d: %w", e.Kind, e.TrialID, err)
	}
	return id, nil
}

// TrialEvents returns a trial's whole history, oldest first. A history has
// no bound a reader controls: what serves it to a caller pages it
// (TrialEventsAfter, TrialEventsBefore).
func (q *Queries) TrialEvents(ctx context.Context, trialID int64) ([]domain.Event, error) {
	rows, err := q.db.Query(ctx, `SELECT `+trialEventColumns+`
		FROM trial_events WHERE trial_id = $1 ORDER BY id`, trialID)
	return collectEvents(rows, err, trialID)
}

// TrialEventsAfter returns up to limit events of a trial's history with an
// id above after, oldest first: a page of the history in its own order,
// whose last id is the next page's after.
func (q *Queries) TrialEventsAfter(ctx context.Context, trialID, after int64, limit int) ([]domain.Event, error) {
	rows, err := q.db.Query(ctx, `SELECT `+trialEventColumns+`
		FROM trial_events WHERE trial_id = $1 AND id > $2 ORDER BY id LIMIT $3`, trialID, after, limit)
	return collectEvents(rows, err, trialID)
}

// TrialEventsBefore returns up to limit events of a trial's history with an
// id below before (0: from the newest), newest first: a page of the
// timeline, whose last id is the next, older, page's before.
func (q *Queries) TrialEventsBefore(ctx context.Context, trialID, before int64, limit int) ([]domain.Event, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := q.db.Query(ctx, `SELECT `+trialEventColumns+`
		FROM trial_events WHERE trial_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, trialID, before, limit)
	return collectEvents(rows, err, trialID)
}

// CountTrialEventsSince counts a trial's events of kind at or after since
// (the trial's time: its test clock's, when it has one), so a caller can
// bound how many a user adds in a period.
func (q *Queries) CountTrialEventsSince(ctx context.Context, trialID int64, kind string, since time.Time) (int, error) {
	var n int
	err := q.db.QueryRow(ctx, `
		SELECT count(*) FROM trial_events WHERE trial_id = $1 AND kind = $2 AND at >= $3`,
		trialID, kind, since).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting %s events of trial %d: %w", kind, trialID, err)
	}
	return n, nil
}

const trialEventColumns = `id, trial_id, kind, at, actor, cause, data`

func collectEvents(rows pgx.Rows, err error, trialID int64) ([]domain.Event, error) {
	if err != nil {
		return nil, fmt.Errorf("listing events of trial %d: %w", trialID, err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Event, error) {
		var e domain.Event
		err := row.Scan(&e.ID, &e.TrialID, &e.Kind, &e.At, &e.Actor, &e.Cause, &e.Data)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing events of trial %d: %w", trialID, err)
	}
	return events, nil
}

// HasTrialEvent reports whether the trial's history already holds an event
// of kind whose data contains data, so a retried job records nothing twice.
func (q *Queries) HasTrialEvent(ctx context.Context, trialID int64, kind string, data any) (bool, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("encoding event filter: %w", err)
	}
	var ok bool
	err = q.db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM trial_events WHERE trial_id = $1 AND kind = $2 AND data @> $3)`,
		trialID, kind, raw).Scan(&ok)
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
	kinds, actors, causes, data := make([]string, len(events)), make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
	ats := make([]time.Time, len(events))
	for i, e := range events {
		trialIDs[i], kinds[i], ats[i], actors[i], causes[i] = e.TrialID, e.Kind, e.At, e.Actor, e.Cause
		data[i] = "{}"
		if e.Data != nil {
			data[i] = string(e.Data)
		}
	}
	rows, err := q.db.Query(ctx, `
		INSERT INTO trial_events (trial_id, kind, at, actor, cause, data)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb[])
		RETURNING trial_id, id`, trialIDs, kinds, ats, actors, causes, data)
	if err != nil {
		return fmt.Errorf("inserting %d events: %w", len(events), err)
	}
	ids := make(map[int64]int64, len(events))
	var trialID, id int64
	if _, err := pgx.ForEachRow(rows, []any{&trialID, &id}, func() error {
		ids[trialID] = id
		return nil
	}); err != nil {
		return fmt.Errorf("inserting %d events: %w", len(events), err)
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
	var n int64
	err := q.db.QueryRow(ctx, `SELECT count(*) FROM trial_events WHERE trial_id = $1 AND id <= $2`, trialID, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("numbering event %d of trial %d: %w", id, trialID, err)
	}
	return n, nil
}
