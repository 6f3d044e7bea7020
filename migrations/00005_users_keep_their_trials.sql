-- A user who owns a trial or belongs to an organization can no longer be
-- deleted with them. The unpaid sign-up sweep deleted users, and their
-- trials went with them by cascade: no trial.purged event, a trial
-- organization left without its member (some with enterprise features on),
-- and scheduled jobs pointing at trials that were gone. A trial leaves
-- only through the lifecycle (the purge of its organization, which records
-- trial.purged), so the database now refuses a user delete that would take
-- a trial or a membership with it; enterprises.user_id refused one already.
-- Re-adding a foreign key checks the existing rows once (a scan of trials
-- and of organization_members), under a lock that holds writes meanwhile.

-- +goose Up
ALTER TABLE trials DROP CONSTRAINT trials_user_id_fkey,
    ADD CONSTRAINT trials_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT;
ALTER TABLE organization_members DROP CONSTRAINT organization_members_user_id_fkey,
    ADD CONSTRAINT organization_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT;

-- +goose Down
ALTER TABLE organization_members DROP CONSTRAINT organization_members_user_id_fkey,
    ADD CONSTRAINT organization_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE trials DROP CONSTRAINT trials_user_id_fkey,
    ADD CONSTRAINT trials_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
