-- name: InsertTestClock :one
INSERT INTO test_clocks (name, frozen_time, created_at, deletes_after)
VALUES (@name, @frozen_time, @created_at, @deletes_after)
RETURNING *;

-- name: TestClockByID :one
SELECT * FROM test_clocks WHERE id = @id;

-- name: TestClockByIDForUpdate :one
-- An advance's step, an advance's start and a clock's deletion serialise
-- on this lock; it comes before the clock's trials in the lock order.
SELECT * FROM test_clocks WHERE id = @id FOR UPDATE;

-- name: TestClockOfStepJobForUpdate :one
SELECT * FROM test_clocks WHERE step_job_ids @> ARRAY[@job_id::bigint] FOR UPDATE;

-- name: TestClocks :many
SELECT * FROM test_clocks ORDER BY id DESC LIMIT @max_clocks;

-- name: SetTestClock :exec
UPDATE test_clocks
SET frozen_time = @frozen_time, status = @status, target_time = @target_time,
    step_job_ids = coalesce(@step_job_ids::bigint[], '{}')
WHERE id = @id;

-- name: CountTrialsOnClock :one
SELECT count(*) FROM trials WHERE test_clock_id = @test_clock_id::bigint;

-- name: LockTrialsOfClock :exec
-- In id order, as the lock order asks before the trials' jobs are touched.
SELECT id FROM trials WHERE test_clock_id = @test_clock_id::bigint ORDER BY id FOR UPDATE;

-- name: TestClockJobIDs :many
-- Each trial's transition and reminders, and its organization's purge.
SELECT id::bigint FROM (
    SELECT t.transition_job_id AS id FROM trials t WHERE t.test_clock_id = @test_clock_id::bigint
    UNION ALL
    SELECT unnest(t.reminder_job_ids) FROM trials t WHERE t.test_clock_id = @test_clock_id::bigint
    UNION ALL
    SELECT o.purge_job_id FROM trials t JOIN organizations o ON o.id = t.organization_id
    WHERE t.test_clock_id = @test_clock_id::bigint
) jobs WHERE id IS NOT NULL ORDER BY id;

-- name: DeleteTrialsOfClock :exec
-- With their organizations (and so their projects and memberships) and
-- their histories.
WITH gone AS (
    SELECT id, organization_id FROM trials WHERE test_clock_id = @test_clock_id::bigint ORDER BY id FOR UPDATE
), events AS (
    DELETE FROM trial_events WHERE trial_id IN (SELECT id FROM gone)
)
DELETE FROM organizations WHERE id IN (SELECT organization_id FROM gone);

-- name: DeleteTestClock :exec
DELETE FROM test_clocks WHERE id = @id;

-- name: ExpiredTestClocks :many
SELECT id FROM test_clocks WHERE deletes_after <= @now ORDER BY id LIMIT @max_clocks;
