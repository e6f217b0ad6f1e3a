-- name: RejectedInsert :one
INSERT INTO rejected_requests (
    received_at, source, event_type, status, cause, detail, credential,
    content_type, body, body_size, body_truncated
) VALUES (
    @received_at::timestamptz, @source::text, @event_type::text, @status::integer,
    @cause::text, @detail::text, @credential::text, @content_type::text,
    @body::bytea, @body_size::bigint, @body_truncated::boolean
)
RETURNING id;

-- name: RejectedList :many
SELECT *
FROM rejected_requests
WHERE source = @source::text
ORDER BY id;

-- name: RejectedPosition :one
-- Where a row stands in the listing's order: a page's cursor is the id of
-- its last row.
SELECT commit_xid FROM rejected_requests WHERE id = @id::bigint;

-- name: RejectedPage :many
-- The requests kept after a position, in commit-safe order as the access
-- log is listed (AccessLogList), without their bodies.
SELECT id, received_at, source, event_type, status, cause, detail, credential,
       content_type, body_size, body_truncated, commit_xid
FROM rejected_requests
WHERE (commit_xid, id) > (@after_xid::bigint, @after_id::bigint)
  AND commit_xid < (SELECT casetrail_feed_horizon())
ORDER BY commit_xid, id
LIMIT @row_limit::integer;

-- name: RejectedPageBySource :many
-- RejectedPage for one source: one range of its index, as AccessLogListByKey
-- reads one key's rows.
SELECT id, received_at, source, event_type, status, cause, detail, credential,
       content_type, body_size, body_truncated, commit_xid
FROM rejected_requests
WHERE (source, commit_xid, id) > (@source::text, @after_xid::bigint, @after_id::bigint)
  AND (source, commit_xid, id) < (@source::text, (SELECT casetrail_feed_horizon()), 0::bigint)
ORDER BY source, commit_xid, id
LIMIT @row_limit::integer;

-- name: RejectedGet :one
-- One kept request with its body as received (as far as it was read).
SELECT id, received_at, source, event_type, status, cause, detail, credential,
       content_type, body_size, body_truncated, body, sha256(body) AS body_sha256
FROM rejected_requests
WHERE id = @id::bigint;
