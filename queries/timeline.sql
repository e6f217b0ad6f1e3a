-- name: EventCaseKeys :one
-- The correlation keys a case's own events carry.
SELECT coalesce(array_agg(DISTINCT phone) FILTER (WHERE phone IS NOT NULL), '{}')::text[] AS phones,
       coalesce(array_agg(DISTINCT customer_id) FILTER (WHERE customer_id IS NOT NULL), '{}')::text[] AS customer_ids,
       coalesce(array_agg(DISTINCT conversation_id) FILTER (WHERE conversation_id IS NOT NULL), '{}')::text[] AS conversation_ids
FROM events
WHERE case_id = @case_id::text;

-- name: EventListTimeline :many
-- A case's events and the contact-center events correlated with it, or a
-- contact's events (case_id null, keys given): keyset-paginated on
-- (occurred_at, id) in either direction.
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.commit_xid,
       (CASE
            WHEN e.case_id = sqlc.narg('case_id')::text THEN 'caseId'
            WHEN e.phone = ANY (@phones::text[]) THEN 'phone'
            WHEN e.customer_id = ANY (@customer_ids::text[]) THEN 'customerId'
            ELSE 'conversationId'
        END)::text AS matched_by
FROM events e
WHERE (e.case_id = sqlc.narg('case_id')::text
       OR ((sqlc.narg('case_id')::text IS NULL OR e.kind = 'service-hooks')
           AND (e.phone = ANY (@phones::text[])
                OR e.customer_id = ANY (@customer_ids::text[])
                OR e.conversation_id = ANY (@conversation_ids::text[]))))
  AND e.type LIKE ANY (@type_patterns::text[])
  AND (sqlc.narg('from')::timestamptz IS NULL OR e.occurred_at >= sqlc.narg('from')::timestamptz)
  AND (sqlc.narg('to')::timestamptz IS NULL OR e.occurred_at < sqlc.narg('to')::timestamptz)
  AND (sqlc.narg('after_at')::timestamptz IS NULL
       OR (@ascending::boolean AND (e.occurred_at, e.id) > (sqlc.narg('after_at')::timestamptz, @after_id::bigint))
       OR (NOT @ascending::boolean AND (e.occurred_at, e.id) < (sqlc.narg('after_at')::timestamptz, @after_id::bigint)))
ORDER BY CASE WHEN @ascending::boolean THEN e.occurred_at END ASC,
         CASE WHEN @ascending::boolean THEN e.id END ASC,
         CASE WHEN NOT @ascending::boolean THEN e.occurred_at END DESC,
         CASE WHEN NOT @ascending::boolean THEN e.id END DESC
LIMIT @row_limit::integer;

-- name: EventListFeed :many
-- The global feed in commit-safe order: only rows of transactions older than
-- every transaction still running, so none can later appear behind a cursor.
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.commit_xid,
       ''::text AS matched_by
FROM events e
WHERE e.commit_xid < (SELECT casetrail_feed_horizon())
  AND (e.commit_xid, e.id) > (@after_xid::bigint, @after_id::bigint)
  AND (sqlc.narg('source')::text IS NULL OR e.source = sqlc.narg('source')::text)
  AND e.type LIKE ANY (@type_patterns::text[])
  AND (sqlc.narg('from')::timestamptz IS NULL OR e.received_at >= sqlc.narg('from')::timestamptz)
  AND (sqlc.narg('to')::timestamptz IS NULL OR e.received_at < sqlc.narg('to')::timestamptz)
ORDER BY e.commit_xid, e.id
LIMIT @row_limit::integer;

-- name: EventGetDetail :one
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.credential,
       e.idempotency_key, e.content_type, e.body, e.body_sha256, e.doc, e.doc_lossy, e.reply
FROM events e
WHERE e.id = @id::bigint;

-- name: BlobGet :one
SELECT sha256, size, content
FROM blobs
WHERE sha256 = @sha256::bytea;
