-- name: AbandonFactsLock :exec
-- Serialises the transactions that touch the same numbers' abandon facts, so
-- that an abandon and an outbound call to its number committed at the same
-- time still find each other. Keys are hashes of the numbers, sorted, so
-- that concurrent transactions never wait on each other in a cycle.
SELECT pg_advisory_xact_lock(@class::integer, k)
FROM unnest(@keys::integer[]) AS k;

-- name: AbandonFactsAdd :exec
-- Adds the abandons just stored to the projection, each with the first
-- outbound call to its number after it. Within the batch, repeats of one
-- abandon (same caller, time and queue) must already be removed; against the
-- store, the repeat with the smallest event id represents the abandon.
INSERT INTO abandon_facts (
    event_id, abandoned_at, received_at, queue, phone, caller, time_in_queue_ms,
    callback_at, callback_agent, callback_event_id
)
SELECT a.id, a.abandoned_at, a.received_at, a.queue, nullif(a.phone, ''),
       coalesce(nullif(a.phone, ''), a.id::text), nullif(a.time_in_queue_ms, -1),
       cb.occurred_at, cb.agent_id, cb.id
FROM (
    SELECT (@id::bigint[])[g]::bigint AS id,
           (@abandoned_at::timestamptz[])[g]::timestamptz AS abandoned_at,
           (@received_at::timestamptz[])[g]::timestamptz AS received_at,
           (@queue::text[])[g]::text AS queue,
           (@phone::text[])[g]::text AS phone,
           (@time_in_queue_ms::bigint[])[g]::bigint AS time_in_queue_ms
    FROM generate_series(1, cardinality(@id::bigint[])) AS g
) a
LEFT JOIN LATERAL (
    SELECT o.occurred_at, o.agent_id, o.id
    FROM events o
    WHERE o.kind = 'service-hooks' AND o.type = 'outbound-call'
      AND o.phone = a.phone AND o.occurred_at > a.abandoned_at
    ORDER BY o.occurred_at, o.id
    LIMIT 1
) cb ON true
ON CONFLICT (caller, abandoned_at, queue) DO UPDATE
SET event_id = excluded.event_id, received_at = excluded.received_at,
    time_in_queue_ms = excluded.time_in_queue_ms
WHERE excluded.event_id < abandon_facts.event_id;

-- name: AbandonFactsCallback :exec
-- Makes the outbound calls just stored the first callback of the earlier
-- abandons of their numbers that had none, or only a later one.
UPDATE abandon_facts AS f
SET callback_at = c.at, callback_agent = nullif(c.agent, ''), callback_event_id = c.id
FROM (
    SELECT DISTINCT ON (x.event_id) x.event_id, o.at, o.agent, o.id
    FROM abandon_facts x
    JOIN (
        SELECT (@id::bigint[])[g]::bigint AS id,
               (@phone::text[])[g]::text AS phone,
               (@at::timestamptz[])[g]::timestamptz AS at,
               (@agent::text[])[g]::text AS agent
        FROM generate_series(1, cardinality(@id::bigint[])) AS g
    ) o ON x.phone = o.phone AND x.abandoned_at < o.at
    ORDER BY x.event_id, o.at, o.id
) c
WHERE f.event_id = c.event_id
  AND (f.callback_at IS NULL OR f.callback_at > c.at OR (f.callback_at = c.at AND f.callback_event_id > c.id));

-- name: ReportAbandonFacts :many
-- The abandons in [from, to), optionally of one queue, oldest first. Read
-- row by row (db.Queries.ReportAbandonFactsEach): the columns are as stored,
-- so that the database only reads them out.
SELECT abandoned_at, received_at, queue, phone, time_in_queue_ms, callback_at
FROM abandon_facts
WHERE abandoned_at >= @from_at::timestamptz AND abandoned_at < @to_at::timestamptz
  AND (sqlc.narg('queue')::text IS NULL OR queue = sqlc.narg('queue')::text)
ORDER BY abandoned_at, event_id;

-- name: ReportAbandonContacts :many
-- A page of the abandons in [from, to) after (after_at, after_id), filtered
-- by status ('' for all, short, called_back, not_called_back), with their
-- first callback and the number of calls to the number within the window.
SELECT f.event_id, f.abandoned_at, f.queue, coalesce(f.phone, '')::text AS phone, f.time_in_queue_ms,
       coalesce(f.callback_at, 'epoch')::timestamptz AS callback_at,
       coalesce(f.callback_agent, '')::text AS callback_agent,
       coalesce(f.callback_at <= f.abandoned_at + (interval '1 second' * @window_seconds::bigint), false)::boolean AS called_back,
       (SELECT count(*) FROM events o
        WHERE o.kind = 'service-hooks' AND o.type = 'outbound-call' AND o.phone = f.phone
          AND o.occurred_at > f.abandoned_at
          AND o.occurred_at <= f.abandoned_at + (interval '1 second' * @window_seconds::bigint))::bigint AS attempts
FROM abandon_facts f
WHERE f.abandoned_at >= @from_at::timestamptz AND f.abandoned_at < @to_at::timestamptz
  AND (sqlc.narg('queue')::text IS NULL OR f.queue = sqlc.narg('queue')::text)
  AND (f.abandoned_at, f.event_id) > (@after_at::timestamptz, @after_id::bigint)
  AND CASE @status::text
        WHEN 'short' THEN coalesce(f.time_in_queue_ms < @short_ms::bigint, false)
        WHEN 'called_back' THEN coalesce(f.callback_at <= f.abandoned_at + (interval '1 second' * @window_seconds::bigint), false)
        WHEN 'not_called_back' THEN NOT coalesce(f.callback_at <= f.abandoned_at + (interval '1 second' * @window_seconds::bigint), false)
        ELSE true
      END
ORDER BY f.abandoned_at, f.event_id
LIMIT @max_rows::integer;

-- name: ReportHandledCounts :many
-- Inbound work items closed in [bounds[1], bounds[n]), counted per bucket
-- (bucket i holds [bounds[i], bounds[i+1])), with the latest receipt time.
SELECT width_bucket(e.occurred_at, @bounds::timestamptz[])::integer AS bucket,
       count(*)::bigint AS closed,
       max(e.received_at)::timestamptz AS last_received
FROM events e
WHERE e.kind = 'service-hooks' AND e.type = 'workitem-closed' AND e.is_outbound IS FALSE
  AND e.occurred_at >= @from_at::timestamptz AND e.occurred_at < @to_at::timestamptz
GROUP BY 1
ORDER BY 1;

-- name: ReportHandled :many
-- Inbound work items closed in [from, to).
SELECT e.occurred_at, e.received_at
FROM events e
WHERE e.kind = 'service-hooks' AND e.type = 'workitem-closed' AND e.is_outbound IS FALSE
  AND e.occurred_at >= @from_at::timestamptz AND e.occurred_at < @to_at::timestamptz
ORDER BY e.occurred_at;
