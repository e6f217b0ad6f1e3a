-- Rejected requests listed over the API (GET /v1/rejected) in a
-- commit-safe order, as the access log is (00011): ids are taken when a
-- request is kept, not when its transaction commits, so paging by id alone
-- could skip a row that committed late.

-- +goose Up
-- The transaction id of the insert. Rows kept before this migration read
-- 0: they keep their id order, ahead of every later row, and adding the
-- column rewrites nothing.
ALTER TABLE rejected_requests ADD COLUMN commit_xid bigint NOT NULL DEFAULT 0;
ALTER TABLE rejected_requests ALTER COLUMN commit_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX rejected_requests_commit_idx ON rejected_requests (commit_xid, id);
CREATE INDEX rejected_requests_source_commit_idx ON rejected_requests (source, commit_xid, id);

-- +goose Down
DROP INDEX rejected_requests_source_commit_idx;
DROP INDEX rejected_requests_commit_idx;
ALTER TABLE rejected_requests DROP COLUMN commit_xid;
