-- name: EventInsert :batchone
-- Claims the idempotency key and stores the event in one statement; no row
-- comes back when the key was already taken (a duplicate or a conflict).
WITH claimed AS (
    INSERT INTO idempotency_keys (source, key, explicit, body_sha256, event_id, received_at)
    VALUES (@source::text, @idempotency_key::text, @explicit::boolean, @body_sha256::bytea,
            nextval('events_id_seq'), @received_at::timestamptz)
    ON CONFLICT (source, key) DO NOTHING
    RETURNING event_id
)
INSERT INTO events (
    id, received_at, occurred_at, source, kind, type, credential, idempotency_key,
    case_id, phone, customer_id, conversation_id, agent_id, work_item_id, queue,
    time_in_queue_ms, is_outbound, actor, changes, summary, content_type,
    body, body_sha256, doc, doc_lossy, reply
)
SELECT claimed.event_id, @received_at::timestamptz, @occurred_at::timestamptz, @source::text,
       @kind::text, @type::text, @credential::text, @idempotency_key::text,
       sqlc.narg('case_id')::text, sqlc.narg('phone')::text, sqlc.narg('customer_id')::text,
       sqlc.narg('conversation_id')::text, sqlc.narg('agent_id')::text,
       sqlc.narg('work_item_id')::text, sqlc.narg('queue')::text,
       sqlc.narg('time_in_queue_ms')::bigint, sqlc.narg('is_outbound')::boolean,
       sqlc.narg('actor')::jsonb, sqlc.narg('changes')::jsonb, @summary::text,
       @content_type::text, @body::bytea, @body_sha256::bytea, sqlc.narg('doc')::jsonb,
       @doc_lossy::boolean, sqlc.narg('reply')::jsonb
FROM claimed
RETURNING id;

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
