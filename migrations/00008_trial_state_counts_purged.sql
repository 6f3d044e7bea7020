-- A cumulative count of purged trials beside the trials-by-state counters.
-- A purge deletes its trials' rows, so the state counters drop them and a
-- dashboard reading only those loses every purged trial from its history
-- (the upgraded share of what is left drifts towards 100 %). The delete
-- trigger now also adds the rows it saw leave to the pseudo-state
-- 'purged', in the same sharded rows, so reading it costs nothing more and
-- the fold keeps it small like the others. A trial leaves the table only
-- through a purge (00005), and each purge records trial.purged, so the
-- count starts from the trials those events name. A test clock's trials
-- stay out of every count, as in 00006.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION trial_state_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard integer := pg_backend_pid();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, count(*) FROM new_rows WHERE test_clock_id IS NULL GROUP BY state
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, -count(*) FROM old_rows WHERE test_clock_id IS NULL GROUP BY state
        UNION ALL
        SELECT my_shard, 'purged', count(*) FROM old_rows WHERE test_clock_id IS NULL HAVING count(*) > 0
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        -- Only states whose count changed: most updates keep the state.
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, sum(d) FROM (
            SELECT state, -1 AS d FROM old_rows WHERE test_clock_id IS NULL
            UNION ALL
            SELECT state, 1 FROM new_rows WHERE test_clock_id IS NULL
        ) changes GROUP BY state HAVING sum(d) <> 0
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

INSERT INTO trial_state_counts AS c (shard, state, n)
SELECT 0, 'purged', count(DISTINCT trial_id) FROM trial_events WHERE kind = 'trial.purged'
ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;

-- +goose Down
DELETE FROM trial_state_counts WHERE state = 'purged';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION trial_state_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard integer := pg_backend_pid();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, count(*) FROM new_rows WHERE test_clock_id IS NULL GROUP BY state
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, -count(*) FROM old_rows WHERE test_clock_id IS NULL GROUP BY state
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO trial_state_counts AS c (shard, state, n)
        SELECT my_shard, state, sum(d) FROM (
            SELECT state, -1 AS d FROM old_rows WHERE test_clock_id IS NULL
            UNION ALL
            SELECT state, 1 FROM new_rows WHERE test_clock_id IS NULL
        ) changes GROUP BY state HAVING sum(d) <> 0
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
