-- name: EventPartitionsEnsure :one
SELECT casetrail_ensure_partitions(@from_month::date, @months::integer)::integer AS created;

-- name: EventIDsReserve :many
-- Takes n event ids, for a bulk load that claims no idempotency keys.
SELECT nextval('events_id_seq')::bigint AS id
FROM generate_series(1, @n::integer)
ORDER BY 1;

-- name: EventsIngest :many
-- Stores a batch in one statement (casetrail_ingest, migrations 00006 and
-- 00016).
SELECT ord::integer AS ord, event_id::bigint AS event_id, stored::boolean AS stored, held_sha256::bytea AS held_sha256
FROM casetrail_ingest(
    @source::text[], @key::text[], @explicit::boolean[], @body_sha256::bytea[],
    @received_at::timestamptz[], @occurred_at::timestamptz[], @kind::text[], @type::text[],
    @credential::text[], @case_id::text[], @phone::text[], @customer_id::text[],
    @conversation_id::text[], @agent_id::text[], @work_item_id::text[], @queue::text[],
    @time_in_queue_ms::bigint[], @is_outbound::text[], @actor::jsonb[], @changes::jsonb[],
    @summary::text[], @content_type::text[], @body::bytea[], @doc::jsonb[],
    @doc_lossy::boolean[], @reply::jsonb[],
    @blob_sha256::bytea[], @blob_size::bigint[], @blob_content::bytea[],
    @ref_ord::integer[], @ref_sha256::bytea[],
    @lock_key::integer[], @abandon_ord::integer[], @call_ord::integer[]
)
ORDER BY 1;

-- name: EventCopyIn :copyfrom
-- Stores the events whose keys were just claimed, by COPY.
INSERT INTO events (
    id, received_at, occurred_at, source, kind, type, credential, idempotency_key,
    case_id, phone, customer_id, conversation_id, agent_id, work_item_id, queue,
    time_in_queue_ms, is_outbound, actor, changes, summary, content_type,
    body, body_sha256, doc, doc_lossy, reply
) VALUES (
    @id, @received_at, @occurred_at, @source, @kind, @type, @credential, @idempotency_key,
    @case_id, @phone, @customer_id, @conversation_id, @agent_id, @work_item_id, @queue,
    @time_in_queue_ms, @is_outbound, @actor, @changes, @summary, @content_type,
    @body, @body_sha256, @doc, @doc_lossy, @reply
);

-- name: EventTypeGet :one
-- The type of a stored event: what a repeated explicit idempotency key is
-- checked against, so that a key reused for another hook is not taken as a
-- retry of the first.
SELECT type FROM events WHERE id = @id::bigint;
