-- name: RejectedInsert :one
-- Ids are taken in commit order, as the access log's are (AccessLogInsert):
-- the insert holds an advisory lock from taking its id to its commit. The
-- body is written before the lock is taken (turn reads from body), so a
-- large refused body does not hold up the rows behind it while it is
-- written. A body is stored once however often it is sent.
-- A body erased before (casetrail expunge --rejected) and sent again is kept
-- in the row itself: the erased copy in rejected_bodies stays blank.
WITH erased AS (
    SELECT EXISTS (SELECT FROM expunged_rejections WHERE body_sha256 = @body_sha256::bytea) AS yes
), body AS (
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
       CASE WHEN erased.yes THEN @body::bytea ELSE ''::bytea END,
       CASE WHEN erased.yes THEN NULL ELSE @body_sha256::bytea END,
       @body_size::bigint, @body_truncated::boolean
FROM turn, erased
RETURNING id;

-- name: RejectedPage :many
-- The requests kept after an id, without their bodies.
SELECT r.id, r.received_at, r.source, r.event_type, r.status, r.cause, r.detail, r.credential,
       r.content_type, r.body_size, r.body_truncated, x.expunged_at, x.reason AS expunge_reason
FROM rejected_requests r
LEFT JOIN expunged_rejections x ON x.rejected_id = r.id
WHERE r.id > @after_id::bigint
ORDER BY r.id
LIMIT @row_limit::integer;

-- name: RejectedPageBySource :many
-- RejectedPage for one source: one range of its index on (source, id), as
-- AccessLogListByKey reads one key's rows.
SELECT r.id, r.received_at, r.source, r.event_type, r.status, r.cause, r.detail, r.credential,
       r.content_type, r.body_size, r.body_truncated, x.expunged_at, x.reason AS expunge_reason
FROM rejected_requests r
LEFT JOIN expunged_rejections x ON x.rejected_id = r.id
WHERE (r.source, r.id) > (@source::text, @after_id::bigint)
  AND (r.source, r.id) <= (@source::text, 9223372036854775807::bigint)
ORDER BY r.source, r.id
LIMIT @row_limit::integer;

-- name: RejectedGet :one
-- One kept request with its body as received (as far as it was read): in
-- rejected_bodies, or in the row itself for rows kept before that table and
-- for a body sent again after its erasure. An erased body's SHA-256 is the
-- record's.
SELECT r.id, r.received_at, r.source, r.event_type, r.status, r.cause, r.detail, r.credential,
       r.content_type, r.body_size, r.body_truncated,
       (CASE WHEN r.body_sha256 IS NULL THEN r.body ELSE b.body END)::bytea AS body,
       COALESCE(x.body_sha256, sha256(CASE WHEN r.body_sha256 IS NULL THEN r.body ELSE b.body END))::bytea AS body_sha256,
       x.expunged_at, x.reason AS expunge_reason
FROM rejected_requests r
LEFT JOIN rejected_bodies b ON b.sha256 = r.body_sha256
LEFT JOIN expunged_rejections x ON x.rejected_id = r.id
WHERE r.id = @id::bigint;

-- name: RejectedExpungeTargets :many
-- The rejected requests to expunge, with whether they were expunged already.
-- Run as the owner, after ExpungeLock.
SELECT r.id, (x.rejected_id IS NOT NULL)::boolean AS expunged
FROM rejected_requests r
LEFT JOIN expunged_rejections x ON x.rejected_id = r.id
WHERE r.id = ANY (@ids::bigint[])
ORDER BY r.id;

-- name: RejectedSharingBodies :many
-- The requests not yet expunged that sent the same stored body as one of the
-- given requests: erasing the body erases it for each of them.
SELECT r.id, min(t.id)::bigint AS with_id
FROM rejected_requests r
JOIN rejected_requests t ON t.body_sha256 = r.body_sha256 AND t.id = ANY (@ids::bigint[])
WHERE NOT EXISTS (SELECT FROM expunged_rejections x WHERE x.rejected_id = r.id)
GROUP BY r.id
ORDER BY r.id;

-- name: RejectedExpungeRecord :exec
-- Records the expunge of the given requests, with the SHA-256 of each body.
INSERT INTO expunged_rejections (rejected_id, reason, body_sha256)
SELECT r.id, @reason::text, COALESCE(r.body_sha256, sha256(r.body))
FROM rejected_requests r
WHERE r.id = ANY (@ids::bigint[]);

-- name: RejectedExpungeRows :exec
-- Blanks the bodies, details and event types of the given requests, in the
-- transaction that recorded their expunge (RejectedExpungeRecord), the one
-- the guards of migration 00013 let do it.
UPDATE rejected_requests
SET body = ''::bytea, detail = '', event_type = ''
WHERE id = ANY (@ids::bigint[]);

-- name: RejectedExpungeBodies :exec
-- Blanks the stored bodies of the given requests, once their expunge is
-- recorded (RejectedExpungeRecord).
UPDATE rejected_bodies
SET body = ''::bytea
WHERE sha256 IN (SELECT r.body_sha256 FROM rejected_requests r WHERE r.id = ANY (@ids::bigint[]));
