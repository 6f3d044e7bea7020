-- Organizations' public ids become time-ordered (UUIDv7: 48 bits of Unix
-- milliseconds, then version 7 and 74 random bits, as 32 hex digits, the
-- format the public_id check already takes). Expiring a trial updates its
-- organization's row; on pages already full that update is not HOT, so it
-- adds an entry to every index of the table, organizations_public_id_key
-- included. With random ids each entry lands on its own leaf page, and on a
-- big table each such page writes a full image to the WAL once per
-- checkpoint: a batch of expiries wrote one per trial. Organizations made
-- together now sit together in the index, and trials made together expire
-- together, so a batch touches a few leaf pages at its right edge. The id
-- reveals when the organization was made, to the millisecond, which its
-- created date in the API already does. Existing ids are kept.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION public_id_v7() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
        || '7' || substr(replace(gen_random_uuid()::text, '-', ''), 14)
$$;
-- +goose StatementEnd
ALTER TABLE organizations ALTER COLUMN public_id SET DEFAULT public_id_v7();

-- +goose Down
ALTER TABLE organizations ALTER COLUMN public_id SET DEFAULT replace(gen_random_uuid()::text, '-', '');
DROP FUNCTION public_id_v7();
