-- name: RejectedInsert :one
-- Ids are taken in commit order, as the access log's are (AccessLogInsert):
-- the insert holds an advisory lock from taking its id to its commit. The
-- body is written before the lock is taken (turn reads from body), so a
-- large refused body does not hold up the rows behind it while it is
-- written. A body is stored once however often it is sent.
WITH body AS (
    INSERT INTO rejected_bodies (sha256, body)
    VALUES (@body_sha256::bytea, @body::bytea)
    ON CONFLICT (sha256) DO NOTHING
    RETURNING 1
), turn AS (
    SELECT pg_advisory_xact_lock(7310012) FROM (SELECT count(*) FROM body) AS stored
)
INSERT INTO rejected_requests (
    received_at, source, event_type, status, cause, detail, credential,
    content_type, body, body_sha256, body_size, body_truncated
)
SELECT @received_at::timestamptz, @source::text, @event_type::text, @status::integer,
       @cause::text, @detail::text, @credential::text, @content_type::text,
       ''::bytea, @body_sha256::bytea, @body_size::bigint, @body_truncated::boolean
FROM turn
RETURNING id;

-- name: RejectedPage :many
-- The requests kept after an id, without their bodies.
SELECT id, received_at, source, event_type, status, cause, detail, credential,
       content_type, body_size, body_truncated
FROM rejected_requests
WHERE id > @after_id::bigint
ORDER BY id
LIMIT @row_limit::integer;

-- name: RejectedPageBySource :many
-- RejectedPage for one source: one range of its index on (source, id), as
-- AccessLogListByKey reads one key's rows.
SELECT id, received_at, source, event_type, status, cause, detail, credential,
       content_type, body_size, body_truncated
FROM rejected_requests
WHERE (source, id) > (@source::text, @after_id::bigint)
  AND (source, id) <= (@source::text, 9223372036854775807::bigint)
ORDER BY source, id
LIMIT @row_limit::integer;

-- name: RejectedGet :one
-- One kept request with its body as received (as far as it was read): in
-- rejected_bodies, or in the row itself for rows kept before that table.
SELECT r.id, r.received_at, r.source, r.event_type, r.status, r.cause, r.detail, r.credential,
       r.content_type, r.body_size, r.body_truncated,
       COALESCE(b.body, r.body)::bytea AS body, sha256(COALESCE(b.body, r.body)) AS body_sha256
FROM rejected_requests r
LEFT JOIN rejected_bodies b ON b.sha256 = r.body_sha256
WHERE r.id = @id::bigint;
