-- Test clocks: simulated time for the trials created on one, so a team can
-- rehearse a trial's month-long life in seconds with the real jobs.
--
-- A clock's trials keep their jobs pending in River (never due by real
-- time); advancing the clock steps frozen_time from due date to due date
-- and makes the jobs due at each step available. step_job_ids are the jobs
-- the current step made available, which the advance waits for before it
-- steps on.

-- +goose Up
CREATE TABLE test_clocks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    frozen_time   timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'advancing')),
    -- Where an advancing clock is going; null when ready.
    target_time   timestamptz,
    step_job_ids  bigint[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    -- Real time after which the clock is deleted with everything on it.
    deletes_after timestamptz NOT NULL,
    CHECK ((status = 'advancing') = (target_time IS NOT NULL))
);
CREATE INDEX test_clocks_deletes_after_idx ON test_clocks (deletes_after);

ALTER TABLE trials ADD COLUMN test_clock_id bigint REFERENCES test_clocks (id);
CREATE INDEX trials_test_clock_id_idx ON trials (test_clock_id) WHERE test_clock_id IS NOT NULL;

-- A clock's trials are rehearsals: the trials-by-state counters, which feed
-- the business metrics, count real-time trials only. A trial never changes
-- clock, so an update's old and new rows agree on it.
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

-- +goose Down
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
DROP INDEX trials_test_clock_id_idx;
ALTER TABLE trials DROP COLUMN test_clock_id;
DROP TABLE test_clocks;
