-- name: LockEligibility :exec
-- Serialises the trial starts of one key (a company domain, or an
-- address's hash for a domain without limits), for the length of the
-- transaction: what the eligibility rules count cannot change between the
-- count and the trial that follows it.
SELECT pg_advisory_xact_lock(hashtextextended('trialsd.eligibility:' || @key::text, 0));

-- name: EligibilityCounts :one
-- What the rules count for one address and its domain: the address's
-- trials ever (tombstones included), the domain's trials in state active,
-- and the domain's trials started since @since; of real time, or of the
-- test clock @test_clock_id.
SELECT
    (SELECT count(*) FROM eligibility_history a WHERE a.address_hash = @address_hash
     AND a.test_clock_id IS NOT DISTINCT FROM sqlc.narg(test_clock_id)::bigint)::int AS address_trials,
    (SELECT count(*) FROM eligibility_history h JOIN trials t ON t.id = h.trial_id
     WHERE h.domain = @domain AND t.state = 'active'
     AND h.test_clock_id IS NOT DISTINCT FROM sqlc.narg(test_clock_id)::bigint)::int AS domain_active,
    (SELECT count(*) FROM eligibility_history r WHERE r.domain = @domain AND r.started_at > @since::timestamptz
     AND r.test_clock_id IS NOT DISTINCT FROM sqlc.narg(test_clock_id)::bigint)::int AS domain_recent;

-- name: EligibilityDomainLimits :one
SELECT * FROM eligibility_domains WHERE domain = @domain;

-- name: UpsertEligibilityDomain :exec
INSERT INTO eligibility_domains (domain, active_limit, trials_limit, note, set_by, set_at)
VALUES (@domain, @active_limit, @trials_limit, @note, @set_by, @set_at)
ON CONFLICT (domain) DO UPDATE SET active_limit = EXCLUDED.active_limit, trials_limit = EXCLUDED.trials_limit,
    note = EXCLUDED.note, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at;

-- name: ClaimEligibilityGrant :one
-- Marks the oldest unused grant for the address or, when @domain_grants,
-- for the domain, as used; no row: there is none.
UPDATE eligibility_grants SET used_at = @now::timestamptz
WHERE id = (
    SELECT g.id FROM eligibility_grants g
    WHERE g.used_at IS NULL
      AND (g.address_hash = @address_hash OR (@domain_grants::boolean AND g.address_hash IS NULL AND g.domain = @domain::text))
    ORDER BY g.address_hash IS NULL, g.id
    LIMIT 1 FOR UPDATE
)
RETURNING *;

-- name: UnusedEligibilityGrant :one
-- The grant ClaimEligibilityGrant would claim, left unused: what a
-- pre-flight reports.
SELECT * FROM eligibility_grants g
WHERE g.used_at IS NULL
  AND (g.address_hash = @address_hash OR (@domain_grants::boolean AND g.address_hash IS NULL AND g.domain = @domain::text))
ORDER BY g.address_hash IS NULL, g.id
LIMIT 1;

-- name: InsertEligibilityGrant :one
INSERT INTO eligibility_grants (address_hash, domain, subject, note, granted_by, granted_at)
VALUES (@address_hash, @domain, @subject, @note, @granted_by, @granted_at)
RETURNING *;

-- name: InsertEligibilityHistory :exec
-- The grant the trial used, if any, names it.
WITH used AS (UPDATE eligibility_grants SET trial_id = @trial_id WHERE id = sqlc.narg(grant_id)::bigint)
INSERT INTO eligibility_history (trial_id, address_hash, domain, started_at, grant_id, test_clock_id)
VALUES (@trial_id, @address_hash, @domain, @started_at, sqlc.narg(grant_id), sqlc.narg(test_clock_id))
ON CONFLICT (trial_id) DO NOTHING;

-- name: EligibilityHistoryOfDomain :many
-- The domain's trials of real time, newest first, with the live trial's
-- state (none: purged).
SELECT sqlc.embed(h), coalesce(t.state, '')::text AS live_state
FROM eligibility_history h LEFT JOIN trials t ON t.id = h.trial_id
WHERE h.domain = @domain AND h.test_clock_id IS NULL
ORDER BY h.started_at DESC, h.trial_id DESC
LIMIT @max_rows;

-- name: EligibilityGrantsOf :many
-- The grants at a company domain, to its addresses and to itself.
SELECT * FROM eligibility_grants
WHERE domain = @domain
ORDER BY id DESC
LIMIT @max_rows;

-- name: PruneEligibilityHistory :execrows
-- Forgets the tombstones purged before @before, and the grants used
-- before it whose trial is not in the history any more (its tombstone
-- goes now, or went before): a live trial's grant stays, as the record of
-- who let it in. Both DELETEs see the table as the statement found it.
WITH grants AS (
    DELETE FROM eligibility_grants g WHERE g.used_at < @before::timestamptz
    AND NOT EXISTS (SELECT 1 FROM eligibility_history h WHERE h.grant_id = g.id
                    AND (h.purged_at IS NULL OR h.purged_at >= @before::timestamptz))
)
DELETE FROM eligibility_history WHERE purged_at < @before::timestamptz;

-- name: EligibilityBackfillUpTo :one
SELECT coalesce(max(up_to), 0)::bigint FROM eligibility_backfill;

-- name: TrialsToBackfill :many
-- The trials up to @up_to that have no history yet, after @after, with
-- their user's address and their test clock.
SELECT t.id, t.created_at, t.test_clock_id, u.email
FROM trials t JOIN users u ON u.id = t.user_id
WHERE t.id > @after AND t.id <= @up_to
  AND NOT EXISTS (SELECT 1 FROM eligibility_history h WHERE h.trial_id = t.id)
ORDER BY t.id
LIMIT @max_rows;

-- name: EndEligibilityBackfill :exec
DELETE FROM eligibility_backfill;
