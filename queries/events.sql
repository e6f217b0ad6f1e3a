-- name: IdempotencyKeyGet :batchone
SELECT event_id, explicit, body_sha256
FROM idempotency_keys
WHERE source = @source::text AND key = @key::text;

-- name: BlobInsert :batchexec
INSERT INTO blobs (sha256, size, content)
VALUES (@sha256::bytea, @size::bigint, @content::bytea)
ON CONFLICT (sha256) DO NOTHING;

-- name: EventPartitionsEnsure :one
SELECT casetrail_ensure_partitions(@from_month::date, @months::integer)::integer AS created;

-- name: EventCopy :copyfrom
-- Bulk load by COPY, for the throughput benchmark's baseline.
INSERT INTO events (
    received_at, occurred_at, source, kind, type, credential, idempotency_key,
    case_id, phone, customer_id, conversation_id, agent_id, work_item_id, queue,
    time_in_queue_ms, is_outbound, summary, content_type, body, body_sha256, doc, doc_lossy
) VALUES (
    @received_at, @occurred_at, @source, @kind, @type, @credential, @idempotency_key,
    @case_id, @phone, @customer_id, @conversation_id, @agent_id, @work_item_id, @queue,
    @time_in_queue_ms, @is_outbound, @summary, @content_type, @body, @body_sha256, @doc, @doc_lossy
);

-- name: EventInsertMany :many
-- Stores a batch in one statement: claims each idempotency key and stores
-- the events whose key was free. Keys must be distinct within the batch.
-- Nullable values travel as '' (text), -1 (time in queue) or '' (booleans
-- and JSON as text), since arrays of them cannot carry NULL here.
WITH input AS (
    SELECT g::bigint AS ord,
           (@received_at::timestamptz[])[g]::timestamptz AS received_at,
           (@occurred_at::timestamptz[])[g]::timestamptz AS occurred_at,
           (@source::text[])[g]::text AS source,
           (@kind::text[])[g]::text AS kind,
           (@type::text[])[g]::text AS type,
           (@credential::text[])[g]::text AS credential,
           (@idempotency_key::text[])[g]::text AS idempotency_key,
           (@explicit::boolean[])[g]::boolean AS explicit,
           (@case_id::text[])[g]::text AS case_id,
           (@phone::text[])[g]::text AS phone,
           (@customer_id::text[])[g]::text AS customer_id,
           (@conversation_id::text[])[g]::text AS conversation_id,
           (@agent_id::text[])[g]::text AS agent_id,
           (@work_item_id::text[])[g]::text AS work_item_id,
           (@queue::text[])[g]::text AS queue,
           (@time_in_queue_ms::bigint[])[g]::bigint AS time_in_queue_ms,
           (@is_outbound::text[])[g]::text AS is_outbound,
           (@actor::text[])[g]::text AS actor,
           (@changes::text[])[g]::text AS changes,
           (@summary::text[])[g]::text AS summary,
           (@content_type::text[])[g]::text AS content_type,
           (@body::bytea[])[g]::bytea AS body,
           (@body_sha256::bytea[])[g]::bytea AS body_sha256,
           (@doc::text[])[g]::text AS doc,
           (@doc_lossy::boolean[])[g]::boolean AS doc_lossy,
           (@reply::text[])[g]::text AS reply
    FROM generate_series(1, cardinality(@source::text[])) AS g
), claimed AS (
    INSERT INTO idempotency_keys (source, key, explicit, body_sha256, event_id, received_at)
    SELECT source, idempotency_key, explicit, body_sha256, nextval('events_id_seq'), received_at
    FROM input
    ORDER BY ord
    ON CONFLICT (source, key) DO NOTHING
    RETURNING source, key, event_id
), stored AS (
    INSERT INTO events (
        id, received_at, occurred_at, source, kind, type, credential, idempotency_key,
        case_id, phone, customer_id, conversation_id, agent_id, work_item_id, queue,
        time_in_queue_ms, is_outbound, actor, changes, summary, content_type,
        body, body_sha256, doc, doc_lossy, reply
    )
    SELECT c.event_id, i.received_at, i.occurred_at, i.source, i.kind, i.type, i.credential, i.idempotency_key,
           nullif(i.case_id, ''), nullif(i.phone, ''), nullif(i.customer_id, ''), nullif(i.conversation_id, ''),
           nullif(i.agent_id, ''), nullif(i.work_item_id, ''), nullif(i.queue, ''),
           nullif(i.time_in_queue_ms, -1), nullif(i.is_outbound, '')::boolean,
           nullif(i.actor, '')::jsonb, nullif(i.changes, '')::jsonb, i.summary, i.content_type,
           i.body, i.body_sha256, nullif(i.doc, '')::jsonb, i.doc_lossy, nullif(i.reply, '')::jsonb
    FROM input i
    JOIN claimed c ON c.source = i.source AND c.key = i.idempotency_key
    ORDER BY i.ord
    RETURNING id
)
SELECT i.ord::bigint AS ord, c.event_id::bigint AS event_id
FROM input i
JOIN claimed c ON c.source = i.source AND c.key = i.idempotency_key
ORDER BY i.ord;
