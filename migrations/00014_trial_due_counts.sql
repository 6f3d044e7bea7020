-- The look-ahead gauges' counts, kept by triggers instead of counted over
-- the trials' indexes at every refresh. Counting the active trials ending
-- within 30 days walked every one of them: ~2 s at 10M, on every replica
-- every metrics.refresh_interval, beside the requests. Now each change of a
-- trial adds to or takes from counters of time buckets, in its own
-- transaction, so the counts are never wrong after a crash.
--
-- What is counted, as the gauges count it: an active real-time trial
-- ('ending') by its expiration_date, an expired real-time trial with a
-- grace_ends_at ('deletion') by that date. A test clock's trials stay out,
-- as in 00006.
--
-- Each date is counted in three buckets: its UTC day, its hour and its
-- minute. The trials due at or before an instant are then the day buckets
-- before the instant's day, the hour buckets of its day before its hour, the
-- minute buckets of its hour before its minute (at most 30 + 23 + 59 bucket
-- keys for a 30-day window), and the trials of the instant's own minute,
-- counted exactly over the index: one minute of trials, whatever the size
-- of the table.
--
-- Counter rows are per backend, as trial_state_counts' are since 00004: a
-- transaction never waits on another's counter row, whatever buckets they
-- share (concurrent starts all count in the bucket of now plus the trial
-- length). trial_due_counts_fold(before), which the reconcile sweep calls,
-- moves the rows of backends that have gone into shard 0, folds the day
-- buckets before `before` into one day bucket at -infinity and drops the
-- hour and minute buckets before it, which no read from `before` on needs;
-- like trial_state_counts_fold it takes only rows no transaction holds and
-- waits on none.
--
-- The triggers are created before the backfill, in the migration's
-- transaction: their lock on trials holds writers off until it commits,
-- so no change is counted twice or missed. The backfill reads the whole
-- table once (seconds at millions of trials).

-- +goose Up
CREATE TABLE trial_due_counts (
    kind   text NOT NULL CHECK (kind IN ('ending', 'deletion')),
    span   text NOT NULL CHECK (span IN ('day', 'hour', 'minute')),
    -- The start of the span holding the date (UTC), or -infinity: the
    -- folded days before the last fold's horizon.
    bucket timestamptz NOT NULL,
    -- The backend that counted (its process id), or 0: folded.
    shard  integer NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (kind, span, bucket, shard)
);

-- +goose StatementBegin
-- trial_due_bucket is the start of the span ('day', 'hour' or 'minute')
-- holding at, aligned on the Unix epoch, so the session's time zone plays
-- no part; an infinite date is its own bucket.
CREATE FUNCTION trial_due_bucket(span text, at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN NOT isfinite(at) THEN at
        ELSE date_bin(CASE span WHEN 'day' THEN interval '1 day' WHEN 'hour' THEN interval '1 hour'
            ELSE interval '1 minute' END, at, timestamptz '1970-01-01 00:00:00+00') END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- trial_due_keys are the counter keys a trial row counts under: the day,
-- hour and minute of its expiration_date while it is active ('ending'), of
-- its grace_ends_at while it is expired ('deletion'); none otherwise. The
-- one statement of what is counted, for the triggers and the backfill.
CREATE FUNCTION trial_due_keys(state text, expiration_date timestamptz, grace_ends_at timestamptz)
RETURNS TABLE (kind text, span text, bucket timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT d.kind, s.span, trial_due_bucket(s.span, d.at)
    FROM (VALUES ('ending', expiration_date, state = 'active'),
            ('deletion', grace_ends_at, state = 'expired' AND grace_ends_at IS NOT NULL)) d (kind, at, counted),
        unnest('{day,hour,minute}'::text[]) s (span)
    WHERE d.counted
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- trial_due_counts_apply counts a statement's changed real-time trials in
-- their buckets, one delta per bucket key: old rows out, new rows in. An
-- update that keeps a trial's state and dates nets to nothing and writes
-- nothing. Each operation has only its own transition tables, hence a
-- statement each.
CREATE FUNCTION trial_due_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard integer := pg_backend_pid();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO trial_due_counts AS c (kind, span, bucket, shard, n)
        SELECT k.kind, k.span, k.bucket, my_shard, count(*)
        FROM new_rows r, LATERAL trial_due_keys(r.state, r.expiration_date, r.grace_ends_at) k
        WHERE r.test_clock_id IS NULL
        GROUP BY 1, 2, 3
        ON CONFLICT (kind, span, bucket, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO trial_due_counts AS c (kind, span, bucket, shard, n)
        SELECT k.kind, k.span, k.bucket, my_shard, -count(*)
        FROM old_rows r, LATERAL trial_due_keys(r.state, r.expiration_date, r.grace_ends_at) k
        WHERE r.test_clock_id IS NULL
        GROUP BY 1, 2, 3
        ON CONFLICT (kind, span, bucket, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO trial_due_counts AS c (kind, span, bucket, shard, n)
        SELECT k.kind, k.span, k.bucket, my_shard, sum(r.d)
        FROM (SELECT state, expiration_date, grace_ends_at, -1 AS d FROM old_rows WHERE test_clock_id IS NULL
              UNION ALL
              SELECT state, expiration_date, grace_ends_at, 1 FROM new_rows WHERE test_clock_id IS NULL) r,
            LATERAL trial_due_keys(r.state, r.expiration_date, r.grace_ends_at) k
        GROUP BY 1, 2, 3 HAVING sum(r.d) <> 0
        ON CONFLICT (kind, span, bucket, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- trial_due_counts_fold moves the counts of backends no longer running into
-- shard 0, folds the day buckets before the day of `before` into the one at
-- -infinity, drops the hour and minute buckets before it and the rows of
-- shard 0 that net to nothing, and returns how many rows it took. Counts
-- read at `before` or later are unchanged. Rows a transaction holds are
-- skipped, and concurrent folds give way to each other, so a fold waits on
-- nothing.
CREATE FUNCTION trial_due_counts_fold(before timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    horizon timestamptz := trial_due_bucket('day', before);
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('trial_due_counts_fold')) THEN
        RETURN 0;
    END IF;
    WITH taken AS (
        DELETE FROM trial_due_counts c
        WHERE (c.kind, c.span, c.bucket, c.shard) IN (
            SELECT kind, span, bucket, shard FROM trial_due_counts
            WHERE (bucket < horizon AND NOT (span = 'day' AND bucket = '-infinity' AND shard = 0))
               OR (shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL))
            FOR UPDATE SKIP LOCKED)
        RETURNING c.kind, c.span, c.bucket, c.n
    ), kept AS (
        SELECT kind, span, CASE WHEN bucket < horizon THEN timestamptz '-infinity' ELSE bucket END AS bucket,
            sum(n)::bigint AS n
        FROM taken WHERE span = 'day' OR bucket >= horizon
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0
    ), moved AS (
        INSERT INTO trial_due_counts AS c (kind, span, bucket, shard, n)
        SELECT kind, span, bucket, 0, n FROM kept
        ON CONFLICT (kind, span, bucket, shard) DO UPDATE SET n = c.n + EXCLUDED.n
    )
    SELECT count(*) INTO folded FROM taken;
    -- Only folds write shard 0, under the lock above: nothing else holds it.
    DELETE FROM trial_due_counts WHERE shard = 0 AND n = 0;
    RETURN folded;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER trials_due_counts_insert AFTER INSERT ON trials
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trial_due_counts_apply();
CREATE TRIGGER trials_due_counts_update AFTER UPDATE ON trials
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trial_due_counts_apply();
CREATE TRIGGER trials_due_counts_delete AFTER DELETE ON trials
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION trial_due_counts_apply();

INSERT INTO trial_due_counts (kind, span, bucket, shard, n)
SELECT k.kind, k.span, k.bucket, 0, count(*)
FROM trials r, LATERAL trial_due_keys(r.state, r.expiration_date, r.grace_ends_at) k
WHERE r.test_clock_id IS NULL AND r.state IN ('active', 'expired')
GROUP BY 1, 2, 3;

-- +goose Down
DROP TRIGGER trials_due_counts_delete ON trials;
DROP TRIGGER trials_due_counts_update ON trials;
DROP TRIGGER trials_due_counts_insert ON trials;
DROP FUNCTION trial_due_counts_fold(timestamptz);
DROP FUNCTION trial_due_counts_apply();
DROP FUNCTION trial_due_keys(text, timestamptz, timestamptz);
DROP TABLE trial_due_counts;
DROP FUNCTION trial_due_bucket(text, timestamptz);
