-- A user who owns a trial or belongs to an organization can no longer be
-- deleted with them. The unpaid sign-up sweep deleted users, and their
-- trials went with them by cascade: no trial.purged event, a trial
-- organization left without its member (some with enterprise features on),
-- and scheduled jobs pointing at trials that were gone. A trial leaves
-- only through the lifecycle (the purge of its organization, which records
-- trial.purged), so the database now refuses a user delete that would take
-- a trial or a membership with it; enterprises.user_id refused one already.
-- Dropping and re-adding a foreign key locks trials and
-- organization_members (ACCESS EXCLUSIVE: reads wait too) while the
-- existing rows are checked, a scan of each, in the migration's one
-- transaction: seconds at millions of trials, so run it as any schema
-- change, at a quiet time. It stays one transaction on purpose: a failure
-- halfway must not leave a table without its key.
--
-- The sweep asks, and every user delete's key check asks, whether a user
-- holds an enterprise; enterprises.user_id gets the index that answers it.

-- +goose Up
ALTER TABLE trials DROP CONSTRAINT trials_user_id_fkey,
    ADD CONSTRAINT trials_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT;
ALTER TABLE organization_members DROP CONSTRAINT organization_members_user_id_fkey,
    ADD CONSTRAINT organization_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT;
CREATE INDEX enterprises_user_id_idx ON enterprises (user_id);

-- +goose Down
DROP INDEX enterprises_user_id_idx;
ALTER TABLE organization_members DROP CONSTRAINT organization_members_user_id_fkey,
    ADD CONSTRAINT organization_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE trials DROP CONSTRAINT trials_user_id_fkey,
    ADD CONSTRAINT trials_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
