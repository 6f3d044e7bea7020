-- name: InsertTrialEvent :one
INSERT INTO trial_events (trial_id, kind, at, actor, cause, data)
VALUES (@trial_id, @kind, @at, @actor, @cause, @data)
RETURNING id;

-- name: TrialEvents :many
SELECT * FROM trial_events WHERE trial_id = @trial_id ORDER BY id;

-- name: TrialEventsAfter :many
SELECT * FROM trial_events WHERE trial_id = @trial_id AND id > @after ORDER BY id LIMIT @max_events;

-- name: TrialEventsBefore :many
SELECT * FROM trial_events WHERE trial_id = @trial_id AND id < @before ORDER BY id DESC LIMIT @max_events;

-- name: CountTrialEventsSince :one
SELECT count(*) FROM trial_events WHERE trial_id = @trial_id AND kind = @kind AND at >= @since;

-- name: HasTrialEvent :one
SELECT EXISTS (SELECT 1 FROM trial_events WHERE trial_id = @trial_id AND kind = @kind AND data @> @data);

-- name: InsertTrialEvents :many
-- One event of each of several trials, in one statement (the arrays,
-- of one length, unnest side by side).
INSERT INTO trial_events (trial_id, kind, at, actor, cause, data)
SELECT unnest(@trial_ids::bigint[]), unnest(@kinds::text[]), unnest(@ats::timestamptz[]),
       unnest(@actors::text[]), unnest(@causes::text[]), unnest(@data::jsonb[])
RETURNING trial_id, id;

-- name: TrialEventSequence :one
SELECT count(*) FROM trial_events WHERE trial_id = @trial_id AND id <= @id;
