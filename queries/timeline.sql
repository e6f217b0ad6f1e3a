-- name: EventCaseKeys :one
-- The correlation keys a case's own events carry.
SELECT coalesce(array_agg(DISTINCT phone) FILTER (WHERE phone IS NOT NULL), '{}')::text[] AS phones,
       coalesce(array_agg(DISTINCT customer_id) FILTER (WHERE customer_id IS NOT NULL), '{}')::text[] AS customer_ids,
       coalesce(array_agg(DISTINCT conversation_id) FILTER (WHERE conversation_id IS NOT NULL), '{}')::text[] AS conversation_ids
FROM events
WHERE case_id = @case_id::text;

-- name: EventListTimeline :many
-- A case's events and the contact-center events correlated with it, or a
-- contact's events (case_id null, keys given): one page, keyset-paginated on
-- (occurred_at, id) in either direction. casetrail_timeline_page (migration
-- 00007) chooses the page.
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.idempotency_key, l.idx AS log_index,
       (CASE
            WHEN e.case_id = sqlc.narg('case_id')::text THEN 'caseId'
            WHEN e.phone = ANY (@phones::text[]) THEN 'phone'
            WHEN e.customer_id = ANY (@customer_ids::text[]) THEN 'customerId'
            ELSE 'conversationId'
        END)::text AS matched_by,
       x.expunged_at, x.reason AS expunge_reason
FROM (
    SELECT event_id::bigint AS event_id, event_received_at::timestamptz AS event_received_at
    FROM casetrail_timeline_page(
        sqlc.narg('case_id')::text, @phones::text[], @customer_ids::text[], @conversation_ids::text[],
        @type_patterns::text[], sqlc.narg('from')::timestamptz, sqlc.narg('to')::timestamptz,
        sqlc.narg('after_at')::timestamptz, @after_id::bigint, @ascending::boolean, @row_limit::integer)
) p
JOIN events e ON e.id = p.event_id AND e.received_at = p.event_received_at
LEFT JOIN log_leaves l ON l.event_id = e.id
LEFT JOIN expunged_events x ON x.event_id = e.id
ORDER BY CASE WHEN @ascending::boolean THEN e.occurred_at END ASC,
         CASE WHEN @ascending::boolean THEN e.id END ASC,
         CASE WHEN NOT @ascending::boolean THEN e.occurred_at END DESC,
         CASE WHEN NOT @ascending::boolean THEN e.id END DESC;

-- name: EventListFeed :many
-- The global feed in log order: gap-free positions assigned after commit, so
-- following the cursor never skips an event.
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.idempotency_key, l.idx AS log_index,
       x.expunged_at, x.reason AS expunge_reason
FROM log_leaves l
JOIN events e ON e.id = l.event_id
LEFT JOIN expunged_events x ON x.event_id = e.id
WHERE l.idx > @after_index::bigint
  AND (sqlc.narg('source')::text IS NULL OR e.source = sqlc.narg('source')::text)
  AND e.type ILIKE ANY (@type_patterns::text[])
  AND (sqlc.narg('from')::timestamptz IS NULL OR e.received_at >= sqlc.narg('from')::timestamptz)
  AND (sqlc.narg('to')::timestamptz IS NULL OR e.received_at < sqlc.narg('to')::timestamptz)
ORDER BY l.idx
LIMIT @row_limit::integer;

-- name: EventGetDetail :one
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.credential,
       e.idempotency_key, e.content_type, e.body, e.body_sha256, e.doc, e.doc_lossy, e.reply,
       l.idx AS log_index, x.expunged_at, x.reason AS expunge_reason
FROM events e
LEFT JOIN log_leaves l ON l.event_id = e.id
LEFT JOIN expunged_events x ON x.event_id = e.id
WHERE e.id = @id::bigint;

-- name: BlobGet :one
SELECT sha256, size, content
FROM blobs
WHERE sha256 = @sha256::bytea;

-- name: EventAttachmentListBySha :many
-- The events whose documents refer to an attachment (migration 00016),
-- whether or not it is still stored.
SELECT event_id
FROM event_attachments
WHERE sha256 = @sha256::bytea
ORDER BY event_id;
