-- name: RejectedInsert :one
-- Ids are taken in commit order, as the access log's are (AccessLogInsert).
WITH turn AS (SELECT pg_advisory_xact_lock(7310012))
INSERT INTO rejected_requests (
    received_at, source, event_type, status, cause, detail, credential,
    content_type, body, body_size, body_truncated
)
SELECT @received_at::timestamptz, @source::text, @event_type::text, @status::integer,
       @cause::text, @detail::text, @credential::text, @content_type::text,
       @body::bytea, @body_size::bigint, @body_truncated::boolean
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
-- One kept request with its body as received (as far as it was read).
SELECT id, received_at, source, event_type, status, cause, detail, credential,
       content_type, body_size, body_truncated, body, sha256(body) AS body_sha256
FROM rejected_requests
WHERE id = @id::bigint;
