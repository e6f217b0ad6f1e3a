-- name: ReportAbandons :many
-- Abandons in [from, to), a repeated delivery of the same abandon (same
-- number, time and queue) counted once, each with the first outbound call to
-- its number after it and within the window, and how many such calls.
WITH abandons AS (
    SELECT DISTINCT ON (coalesce(e.phone, e.id::text), e.occurred_at, coalesce(e.queue, ''))
           e.id, e.occurred_at, e.received_at, e.phone, coalesce(e.queue, '')::text AS queue, e.time_in_queue_ms,
           e.occurred_at + (interval '1 second' * @window_seconds::bigint) AS window_end
    FROM events e
    WHERE e.kind = 'service-hooks' AND e.type = 'abandoned-conversation'
      AND e.occurred_at >= @from_at::timestamptz AND e.occurred_at < @to_at::timestamptz
      AND (sqlc.narg('queue')::text IS NULL OR e.queue = sqlc.narg('queue')::text)
    ORDER BY coalesce(e.phone, e.id::text), e.occurred_at, coalesce(e.queue, ''), e.id
)
SELECT a.id, a.occurred_at, a.received_at, a.phone, a.queue, a.time_in_queue_ms,
       -- With no callback: attempts 0 (and the epoch, an empty agent).
       coalesce(min(o.occurred_at), 'epoch'::timestamptz)::timestamptz AS callback_at,
       coalesce((array_agg(o.agent_id ORDER BY o.occurred_at, o.id))[1], '')::text AS callback_agent,
       count(o.id)::bigint AS callback_attempts
FROM abandons a
LEFT JOIN events o
       ON o.kind = 'service-hooks' AND o.type = 'outbound-call' AND o.phone = a.phone
      AND o.occurred_at > a.occurred_at
      AND o.occurred_at <= a.window_end
GROUP BY a.id, a.occurred_at, a.received_at, a.phone, a.queue, a.time_in_queue_ms
ORDER BY a.occurred_at, a.id;

-- name: ReportHandled :many
-- Inbound work items closed in [from, to).
SELECT e.occurred_at, e.received_at
FROM events e
WHERE e.kind = 'service-hooks' AND e.type = 'workitem-closed' AND e.is_outbound IS FALSE
  AND e.occurred_at >= @from_at::timestamptz AND e.occurred_at < @to_at::timestamptz
ORDER BY e.occurred_at;
