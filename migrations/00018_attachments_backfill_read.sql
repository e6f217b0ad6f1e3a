-- casetrail verify holds each stored document's references to stored
-- attachments to the rows of event_attachments, as the server's role. The
-- events a server of a version before 00016 committed while that migration
-- ran have none until an expunge catches up on them
-- (casetrail_attachments_catch_up): verify passes over them while the
-- window is open, so it reads the window.

-- +goose Up
GRANT SELECT ON event_attachments_backfill TO casetrail_app;

-- +goose Down
REVOKE SELECT ON event_attachments_backfill FROM casetrail_app;
