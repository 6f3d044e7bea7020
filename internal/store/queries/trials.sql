-- The trial columns the domain's Trial holds, in its order, are spelled
-- out in each query below: the details columns (organization_name,
-- utm_params, …) are written once and read only by the search.

-- name: InsertTrial :one
INSERT INTO trials (user_id, organization_id, self_service, created_at, expiration_date, notes,
    organization_name, use_case, user_has_ml_models_in_production, company_name, company_size,
    country, state_or_province, job_title, utm_params, test_clock_id)
VALUES (@user_id, @organization_id, @self_service, @created_at, @expiration_date, @notes,
    @organization_name, @use_case, @user_has_ml_models_in_production, @company_name, @company_size,
    @country, @state_or_province, @job_title, @utm_params, @test_clock_id)
RETURNING id, user_id, organization_id, self_service, created_at, expiration_date,
    notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
    transition_job_id, reminder_job_ids, test_clock_id;

-- name: TrialByID :one
SELECT id, user_id, organization_id, self_service, created_at, expiration_date,
    notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
    transition_job_id, reminder_job_ids, test_clock_id
FROM trials WHERE id = @id;

-- name: TrialByIDForUpdate :one
-- Every transition of a trial runs under this lock.
SELECT id, user_id, organization_id, self_service, created_at, expiration_date,
    notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
    transition_job_id, reminder_job_ids, test_clock_id
FROM trials WHERE id = @id FOR UPDATE;

-- name: TrialsOfOrganizationForUpdate :many
SELECT id, user_id, organization_id, self_service, created_at, expiration_date,
    notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
    transition_job_id, reminder_job_ids, test_clock_id
FROM trials WHERE organization_id = @organization_id ORDER BY id FOR UPDATE;

-- name: TrialsOfUser :many
SELECT id, user_id, organization_id, self_service, created_at, expiration_date,
    notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
    transition_job_id, reminder_job_ids, test_clock_id
FROM trials WHERE user_id = @user_id ORDER BY id DESC;

-- name: ListTrials :many
SELECT id, user_id, organization_id, self_service, created_at, expiration_date,
    notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
    transition_job_id, reminder_job_ids, test_clock_id
FROM trials
WHERE (@state::text = '' OR state = @state::text) AND (@user_id::bigint = 0 OR user_id = @user_id::bigint)
ORDER BY id DESC LIMIT @max_trials;

-- name: ClaimDueActiveTrials :many
-- Rows another transaction holds are skipped rather than waited for; a
-- test clock's trials are due by their clock, not by this time.
SELECT id, user_id, organization_id, self_service, created_at, expiration_date,
    notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
    transition_job_id, reminder_job_ids, test_clock_id
FROM trials
WHERE state = 'active' AND expiration_date <= @due_by AND test_clock_id IS NULL
ORDER BY expiration_date LIMIT @max_trials
FOR UPDATE SKIP LOCKED;

-- name: SetTrialDates :one
UPDATE trials SET expiration_date = @expiration_date, expired_date = @expired_date, deleted_date = @deleted_date,
    upgraded_date = @upgraded_date, grace_ends_at = @grace_ends_at
WHERE id = @id RETURNING state;

-- name: SetTrialNotes :exec
UPDATE trials SET notes = @notes WHERE id = @id;

-- name: SetTrialJobs :exec
UPDATE trials SET transition_job_id = @transition_job_id, reminder_job_ids = @reminder_job_ids WHERE id = @id;

-- name: ReplaceReminderJob :exec
-- A notice job hands over to the next of its trial's notices.
UPDATE trials SET reminder_job_ids = array_remove(reminder_job_ids, @done::bigint) || @next::bigint[]
WHERE id = @id;

-- name: BumpScheduleGen :one
UPDATE trials SET schedule_gen = schedule_gen + 1 WHERE id = @id RETURNING schedule_gen;

-- name: CountTrialsByState :many
SELECT state, sum(n)::bigint AS n FROM trial_state_counts GROUP BY state;

-- name: FoldTrialStateCounts :one
SELECT trial_state_counts_fold()::bigint;

-- name: TrialsDueBy :many
-- Each part walks an index, so a pass reads only what is near due.
SELECT id, schedule_gen, state, due::timestamptz AS due FROM (
    (SELECT t1.id, t1.schedule_gen, t1.state, t1.expiration_date AS due FROM trials t1
     WHERE t1.state = 'active' AND t1.expiration_date <= @due_by AND t1.test_clock_id IS NULL
       AND (t1.expiration_date, t1.id) > (@after_due::timestamptz, @after_id::bigint)
     ORDER BY t1.expiration_date, t1.id LIMIT @max_trials)
    UNION ALL
    (SELECT t2.id, t2.schedule_gen, t2.state, t2.grace_ends_at FROM trials t2
     WHERE t2.state = 'expired' AND t2.grace_ends_at <= @due_by AND t2.test_clock_id IS NULL
       AND (t2.grace_ends_at, t2.id) > (@after_due::timestamptz, @after_id::bigint)
     ORDER BY t2.grace_ends_at, t2.id LIMIT @max_trials)
    UNION ALL
    (SELECT t.id, t.schedule_gen, t.state, o.purge_at FROM organizations o JOIN trials t ON t.organization_id = o.id
     WHERE o.purge_at <= @due_by AND t.state = 'deleted' AND t.test_clock_id IS NULL
       AND (o.purge_at, t.id) > (@after_due::timestamptz, @after_id::bigint)
     ORDER BY o.purge_at, t.id LIMIT @max_trials)
) due ORDER BY due, id LIMIT @max_trials;

-- name: TrialPositionByID :one
SELECT state, schedule_gen FROM trials WHERE id = @id;

-- name: ExpireTrials :exec
-- One new row version per trial: its dates and its jobs at once.
-- A notice job id of 0 is none.
UPDATE trials t SET expired_date = @expired_date, grace_ends_at = @grace_ends_at,
    transition_job_id = u.job_id,
    reminder_job_ids = CASE WHEN u.notice_job_id = 0 THEN '{}'::bigint[] ELSE ARRAY[u.notice_job_id] END
FROM (SELECT unnest(@ids::bigint[]) AS id, unnest(@job_ids::bigint[]) AS job_id,
        unnest(@notice_job_ids::bigint[]) AS notice_job_id) u
WHERE t.id = u.id;

-- name: TrialPurgedAt :one
-- From the trial's history, which outlives its row.
SELECT at FROM trial_events WHERE trial_id = @trial_id AND kind = 'trial.purged' ORDER BY id DESC LIMIT 1;
