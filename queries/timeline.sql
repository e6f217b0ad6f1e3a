-- name: EventCaseKeys :one
-- The correlation keys a case's own events carry.
SELECT coalesce(array_agg(DISTINCT phone) FILTER (WHERE phone IS NOT NULL), '{}')::text[] AS phones,
       coalesce(array_agg(DISTINCT customer_id) FILTER (WHERE customer_id IS NOT NULL), '{}')::text[] AS customer_ids,
       coalesce(array_agg(DISTINCT conversation_id) FILTER (WHERE conversation_id IS NOT NULL), '{}')::text[] AS conversation_ids
FROM events
WHERE case_id = @case_id::text;

-- name: EventListTimelineAsc :many
-- A case's events and the contact-center events correlated with it, or a
-- contact's events (case_id null, keys given): one page, keyset-paginated on
-- (occurred_at, id), oldest first.
--
-- Each key (the case, and every number, customer id and conversation id) is
-- read on its own, in its index's order, and stops after a page: a busy
-- number costs a page of its events, not all of them. The page is the first
-- row_limit events of their union; an event matching several keys counts
-- once. Unset bounds are infinities rather than "IS NULL OR", so that every
-- bound is an index condition whichever plan PostgreSQL chooses.
WITH page AS (
    SELECT DISTINCT ON (h.occurred_at, h.id) h.id, h.received_at, h.occurred_at
    FROM (
        (SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.case_id = sqlc.narg('case_id')::text
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) > (coalesce(sqlc.narg('after_at')::timestamptz, '-infinity'), @after_id::bigint)
            ORDER BY e.occurred_at, e.id
            LIMIT @row_limit::integer)
        UNION ALL
        SELECT x.* FROM unnest(@phones::text[]) AS k(v) CROSS JOIN LATERAL (
            SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.phone = k.v
              AND (sqlc.narg('case_id')::text IS NULL OR e.kind = 'service-hooks')
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) > (coalesce(sqlc.narg('after_at')::timestamptz, '-infinity'), @after_id::bigint)
            ORDER BY e.occurred_at, e.id
            LIMIT @row_limit::integer) x
        UNION ALL
        SELECT x.* FROM unnest(@customer_ids::text[]) AS k(v) CROSS JOIN LATERAL (
            SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.customer_id = k.v
              AND (sqlc.narg('case_id')::text IS NULL OR e.kind = 'service-hooks')
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) > (coalesce(sqlc.narg('after_at')::timestamptz, '-infinity'), @after_id::bigint)
            ORDER BY e.occurred_at, e.id
            LIMIT @row_limit::integer) x
        UNION ALL
        SELECT x.* FROM unnest(@conversation_ids::text[]) AS k(v) CROSS JOIN LATERAL (
            SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.conversation_id = k.v
              AND (sqlc.narg('case_id')::text IS NULL OR e.kind = 'service-hooks')
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) > (coalesce(sqlc.narg('after_at')::timestamptz, '-infinity'), @after_id::bigint)
            ORDER BY e.occurred_at, e.id
            LIMIT @row_limit::integer) x
    ) h
    ORDER BY h.occurred_at, h.id
    LIMIT @row_limit::integer
)
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.idempotency_key, l.idx AS log_index,
       (CASE
            WHEN e.case_id = sqlc.narg('case_id')::text THEN 'caseId'
            WHEN e.phone = ANY (@phones::text[]) THEN 'phone'
            WHEN e.customer_id = ANY (@customer_ids::text[]) THEN 'customerId'
            ELSE 'conversationId'
        END)::text AS matched_by
FROM page p
JOIN events e ON e.id = p.id AND e.received_at = p.received_at
LEFT JOIN log_leaves l ON l.event_id = e.id
ORDER BY p.occurred_at, p.id;

-- name: EventListTimelineDesc :many
-- One page of a timeline, newest first (see EventListTimelineAsc).
WITH page AS (
    SELECT DISTINCT ON (h.occurred_at, h.id) h.id, h.received_at, h.occurred_at
    FROM (
        (SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.case_id = sqlc.narg('case_id')::text
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) < (coalesce(sqlc.narg('after_at')::timestamptz, 'infinity'), @after_id::bigint)
            ORDER BY e.occurred_at DESC, e.id DESC
            LIMIT @row_limit::integer)
        UNION ALL
        SELECT x.* FROM unnest(@phones::text[]) AS k(v) CROSS JOIN LATERAL (
            SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.phone = k.v
              AND (sqlc.narg('case_id')::text IS NULL OR e.kind = 'service-hooks')
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) < (coalesce(sqlc.narg('after_at')::timestamptz, 'infinity'), @after_id::bigint)
            ORDER BY e.occurred_at DESC, e.id DESC
            LIMIT @row_limit::integer) x
        UNION ALL
        SELECT x.* FROM unnest(@customer_ids::text[]) AS k(v) CROSS JOIN LATERAL (
            SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.customer_id = k.v
              AND (sqlc.narg('case_id')::text IS NULL OR e.kind = 'service-hooks')
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) < (coalesce(sqlc.narg('after_at')::timestamptz, 'infinity'), @after_id::bigint)
            ORDER BY e.occurred_at DESC, e.id DESC
            LIMIT @row_limit::integer) x
        UNION ALL
        SELECT x.* FROM unnest(@conversation_ids::text[]) AS k(v) CROSS JOIN LATERAL (
            SELECT e.id, e.received_at, e.occurred_at
            FROM events e
            WHERE e.conversation_id = k.v
              AND (sqlc.narg('case_id')::text IS NULL OR e.kind = 'service-hooks')
              AND e.type LIKE ANY (@type_patterns::text[])
              AND e.occurred_at >= coalesce(sqlc.narg('from')::timestamptz, '-infinity')
              AND e.occurred_at < coalesce(sqlc.narg('to')::timestamptz, 'infinity')
              AND (e.occurred_at, e.id) < (coalesce(sqlc.narg('after_at')::timestamptz, 'infinity'), @after_id::bigint)
            ORDER BY e.occurred_at DESC, e.id DESC
            LIMIT @row_limit::integer) x
    ) h
    ORDER BY h.occurred_at DESC, h.id DESC
    LIMIT @row_limit::integer
)
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.idempotency_key, l.idx AS log_index,
       (CASE
            WHEN e.case_id = sqlc.narg('case_id')::text THEN 'caseId'
            WHEN e.phone = ANY (@phones::text[]) THEN 'phone'
            WHEN e.customer_id = ANY (@customer_ids::text[]) THEN 'customerId'
            ELSE 'conversationId'
        END)::text AS matched_by
FROM page p
JOIN events e ON e.id = p.id AND e.received_at = p.received_at
LEFT JOIN log_leaves l ON l.event_id = e.id
ORDER BY p.occurred_at DESC, p.id DESC;

-- name: EventListFeed :many
-- The global feed in log order: gap-free positions assigned after commit, so
-- following the cursor never skips an event.
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.idempotency_key, l.idx AS log_index
FROM log_leaves l
JOIN events e ON e.id = l.event_id
WHERE l.idx > @after_index::bigint
  AND (sqlc.narg('source')::text IS NULL OR e.source = sqlc.narg('source')::text)
  AND e.type LIKE ANY (@type_patterns::text[])
  AND (sqlc.narg('from')::timestamptz IS NULL OR e.received_at >= sqlc.narg('from')::timestamptz)
  AND (sqlc.narg('to')::timestamptz IS NULL OR e.received_at < sqlc.narg('to')::timestamptz)
ORDER BY l.idx
LIMIT @row_limit::integer;

-- name: EventGetDetail :one
SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.case_id,
       e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue,
       e.time_in_queue_ms, e.is_outbound, e.actor, e.changes, e.summary, e.credential,
       e.idempotency_key, e.content_type, e.body, e.body_sha256, e.doc, e.doc_lossy, e.reply,
       l.idx AS log_index
FROM events e
LEFT JOIN log_leaves l ON l.event_id = e.id
WHERE e.id = @id::bigint;

-- name: BlobGet :one
SELECT sha256, size, content
FROM blobs
WHERE sha256 = @sha256::bytea;
