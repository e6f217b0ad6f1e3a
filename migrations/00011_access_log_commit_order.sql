-- The access log in a commit-safe order, as the event feed's sequencer
-- reads events: ids are taken when a request is recorded, not when its
-- transaction commits, so a row could become visible behind an id a reader
-- had already paged past, and paging by id alone skipped it.

-- +goose Up
-- The transaction id of the insert (see events.commit_xid in 00002). Rows
-- recorded before this migration read 0: they keep their id order, ahead of
-- every later row, and adding the column rewrites nothing.
ALTER TABLE access_log ADD COLUMN commit_xid bigint NOT NULL DEFAULT 0;
ALTER TABLE access_log ALTER COLUMN commit_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX access_log_commit_idx ON access_log (commit_xid, id);
CREATE INDEX access_log_key_commit_idx ON access_log (key_name, commit_xid, id);
DROP INDEX access_log_key_idx;

-- +goose Down
CREATE INDEX access_log_key_idx ON access_log (key_name, id);
DROP INDEX access_log_key_commit_idx;
DROP INDEX access_log_commit_idx;
ALTER TABLE access_log DROP COLUMN commit_xid;
