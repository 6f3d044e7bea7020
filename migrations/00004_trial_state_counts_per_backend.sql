-- The trials-by-state counters, one shard per backend instead of 32 shared.
-- With pg_backend_pid() % 32, two backends whose process ids agree modulo 32
-- wrote the same counter rows: the second waited for the first to commit,
-- at whatever point of its transaction it changed a trial's state, holding
-- the trial and organization locks it had taken by then. That wait sits
-- outside any lock order the application can keep, and it closed deadlock
-- cycles between transitions of unrelated trials. A backend runs one
-- transaction at a time, so a shard of its own is never waited on by
-- another transition.
--
-- Shards of backends that have gone are folded into shard 0 (never a
-- process id) by trial_state_counts_fold(), which the reconcile sweep calls;
-- a fold only takes rows no backend holds, so it never makes a transition
-- wait either. Sums are unchanged: a shard is a partial count, and the old
-- rows (shards 0 to 31) keep counting until they are folded.

-- +goose Up
ALTER TABLE trial_state_counts ALTER COLUMN shard TYPE integer;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION trial_state_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard integer := pg_backend_pid();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, count(*) FROM new_rows GROUP BY state
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, -count(*) FROM old_rows GROUP BY state
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        -- Only states whose count changed: most updates keep the state.
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, sum(d) FROM (
            SELECT state, -1 AS d FROM old_rows
            UNION ALL
            SELECT state, 1 FROM new_rows
        ) changes GROUP BY state HAVING sum(d) <> 0
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- trial_state_counts_fold moves the counts of backends no longer running
-- into shard 0 and returns how many rows it folded. Rows a backend holds
-- (its process id reused since the check) are skipped, and concurrent
-- folds give way to each other, so a fold waits on nothing.
CREATE FUNCTION trial_state_counts_fold() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('trial_state_counts_fold')) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM trial_state_counts c
        WHERE (c.shard, c.state) IN (
            SELECT shard, state FROM trial_state_counts
            WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
            FOR UPDATE SKIP LOCKED)
        RETURNING c.state, c.n
    ), sums AS (
        SELECT state, sum(n)::bigint AS n, count(*) AS rows FROM gone GROUP BY state
    ), moved AS (
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT 0, state, n FROM sums
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n
    )
    SELECT coalesce(sum(rows), 0) INTO folded FROM sums;
    RETURN folded;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION trial_state_counts_fold();

-- Back to 32 shards: fold every shard into shard 0 first, so no count is
-- lost when the column narrows.
WITH sums AS (
    DELETE FROM trial_state_counts RETURNING state, n
)
INSERT INTO trial_state_counts (shard, state, n) SELECT 0, state, sum(n) FROM sums GROUP BY state;

ALTER TABLE trial_state_counts ALTER COLUMN shard TYPE smallint;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION trial_state_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := pg_backend_pid() % 32;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, count(*) FROM new_rows GROUP BY state
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, -count(*) FROM old_rows GROUP BY state
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, sum(d) FROM (
            SELECT state, -1 AS d FROM old_rows
            UNION ALL
            SELECT state, 1 FROM new_rows
        ) changes GROUP BY state HAVING sum(d) <> 0
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
