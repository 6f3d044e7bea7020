-- Trials by state, kept as sharded counters by a trigger, so the state
-- gauges read a few dozen rows instead of counting millions of trials, and
-- stay right whatever changes a trial (a transition, a purge's cascade, a
-- hand edit). Each backend writes to the shard of its process id, so
-- concurrent transitions rarely wait on the same counter row.

-- +goose Up
CREATE TABLE trial_state_counts (
    shard smallint NOT NULL,
    state text NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (shard, state)
);

-- +goose StatementBegin
CREATE FUNCTION trial_state_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := pg_backend_pid() % 32;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO trial_state_counts AS c (shard, state, n) VALUES (my_shard, OLD.state, -1)
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n - 1;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO trial_state_counts AS c (shard, state, n) VALUES (my_shard, NEW.state, 1)
        ON CONFLICT (shard, state) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER trials_state_counts_insert_delete AFTER INSERT OR DELETE ON trials
    FOR EACH ROW EXECUTE FUNCTION trial_state_counts_track();
CREATE TRIGGER trials_state_counts_update AFTER UPDATE ON trials
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION trial_state_counts_track();

INSERT INTO trial_state_counts (shard, state, n) SELECT 0, state, count(*) FROM trials GROUP BY state;

-- +goose Down
DROP TRIGGER trials_state_counts_update ON trials;
DROP TRIGGER trials_state_counts_insert_delete ON trials;
DROP FUNCTION trial_state_counts_track();
DROP TABLE trial_state_counts;
