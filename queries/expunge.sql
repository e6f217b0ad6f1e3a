-- Erasure of events' content (casetrail expunge), run as the owner: the
-- application's role may do none of it. Every statement runs in the one
-- transaction that records the expunge (migration 00008). Until its writes,
-- the transaction takes no transaction id, so that its reads hold back
-- neither the sequencer nor the feed (casetrail_feed_horizon).

-- name: ExpungeLock :exec
-- One expunge at a time: two at once, each seeing the other's event still
-- refer to a shared attachment, would both leave it.
SELECT pg_advisory_xact_lock(7310008);

-- name: ExpungeTargets :many
-- The events to expunge, with what their leaves commit to and their leaves
-- (null when not yet in the log), whether the SHA-256 they show for their
-- body is their body's, whether they were expunged already, and
-- the first attachment each refers to that is not stored as it was
-- (casetrail_bad_attachment, migration 00014, as verify checks it).
SELECT e.id, e.source, e.kind, e.type, e.occurred_at, e.received_at, e.case_id, e.phone,
       e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue, e.time_in_queue_ms,
       e.is_outbound, e.credential, e.summary, e.actor, e.changes, e.reply, e.body_salt,
       sha256(e.body_salt || e.body) AS body_hash, l.leaf_hash,
       e.content_type, e.idempotency_key, e.body_sha256, e.doc_lossy,
       sha256(e.body_salt || convert_to(e.doc::text, 'UTF8')) AS doc_hash,
       coalesce(sha256(e.body) = e.body_sha256, false)::boolean AS body_sha256_matches,
       (x.event_id IS NOT NULL)::boolean AS expunged, casetrail_bad_attachment(e.doc, e.body) AS bad_attachment
FROM events e
LEFT JOIN log_leaves l ON l.event_id = e.id
LEFT JOIN expunged_events x ON x.event_id = e.id
WHERE e.id = ANY (@ids::bigint[])
ORDER BY e.id;

-- name: ExpungeBlobCandidates :many
-- The stored attachments the given events' documents refer to
-- ({"sha256": "<hex>", "size": N} where the content was).
SELECT DISTINCT r.event_id, b.sha256
FROM (
    SELECT e.id AS event_id,
           CASE WHEN jsonb_typeof(h.v) = 'string' AND (h.v #>> '{}') ~ '^[0-9a-f]{64}$'
                THEN decode(h.v #>> '{}', 'hex') END AS sha256
    FROM events e
    CROSS JOIN LATERAL jsonb_path_query(e.doc, 'lax $.**.sha256') AS h(v)
    WHERE e.id = ANY (@ids::bigint[])
) r
JOIN blobs b ON b.sha256 = r.sha256
ORDER BY r.event_id, b.sha256;

-- name: ExpungeLockTimeout :exec
-- The expunge waits at most 5 seconds for the ingests under way to let go
-- of blobs (those that arrive meanwhile wait behind it).
SELECT set_config('lock_timeout', '5s', true);

-- name: ExpungeLockBlobs :exec
-- Holds off every insert into blobs (each ingest that stores attachments)
-- until the expunge commits, so that no event stored meanwhile refers to an
-- attachment this transaction removes.
LOCK TABLE blobs IN SHARE ROW EXCLUSIVE MODE;

-- name: ExpungeBlobsReferenced :many
-- Those of the given attachments that an event other than the given ones,
-- and not expunged, refers to (event_attachments, migration 00016): for
-- each, the first such reference in the order of the table's primary key,
-- so that no document is read and the lookup stops at one reference
-- however many events share the attachment (EXISTS would be planned as a
-- bitmap scan of all of them). An expunged event's references are kept (a
-- reference outlives its attachment) but no longer hold anything.
--
-- Run once without a lock and again, for the attachments left, under
-- ExpungeLockBlobs, which makes the second answer final: an ingest inserts
-- into blobs (ROW EXCLUSIVE, casetrail_ingest) before it inserts its events'
-- references in the same transaction, so once the expunge holds SHARE ROW
-- EXCLUSIVE every ingest that refers to an attachment has committed or
-- rolled back, and the next statement (READ COMMITTED) sees its
-- references; a later one waits for the expunge to commit, and then stores
-- the attachment again with its own event.
SELECT c.sha256::bytea AS sha256
FROM unnest(@blobs::bytea[]) AS c(sha256)
CROSS JOIN LATERAL (
    SELECT a.event_id
    FROM event_attachments a
    WHERE a.sha256 = c.sha256
      AND NOT (a.event_id = ANY (@ids::bigint[]))
      AND NOT EXISTS (SELECT FROM expunged_events x WHERE x.event_id = a.event_id)
    ORDER BY a.event_id
    LIMIT 1
) r
ORDER BY 1;

-- name: ExpungeRecord :exec
INSERT INTO expunged_events (event_id, expunged_at, reason, body_hash, detail_hash, blobs, note)
VALUES (@id::bigint, @expunged_at::timestamptz, @reason::text, @body_hash::bytea,
        sqlc.narg(detail_hash)::bytea, @blobs::bytea[], @note::text);

-- name: ExpungeErase :execrows
-- The receipt time picks the event's partition.
UPDATE events
SET body = ''::bytea, body_sha256 = ''::bytea, doc = NULL, doc_lossy = false, summary = '',
    actor = NULL, changes = NULL, reply = NULL
WHERE id = @id::bigint AND received_at = @received_at::timestamptz;

-- name: ExpungeDeleteBlobs :execrows
DELETE FROM blobs
WHERE sha256 = ANY (@blobs::bytea[]);

-- name: ExpungeCatchUpReferences :one
-- Stores the references of events a server of a version before 00016
-- committed while that migration ran (casetrail_attachments_catch_up),
-- so that the lookups above find every event referring to an attachment.
SELECT casetrail_attachments_catch_up()::bigint AS added;
