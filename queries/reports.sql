-- name: ReportAbandonFacts :many
-- The abandons in [from, to), optionally of one queue, oldest first. Read
-- row by row (store.eachAbandonFactRow): the columns are as stored,
-- so that the database only reads them out.
SELECT abandoned_at, received_at, queue, phone, time_in_queue_ms, callback_at
FROM abandon_facts
WHERE abandoned_at >= @from_at::timestamptz AND abandoned_at < @to_at::timestamptz
  AND (sqlc.narg('queue')::text IS NULL OR queue = sqlc.narg('queue')::text)
ORDER BY abandoned_at, event_id;

-- name: ReportAbandonContacts :many
-- A page of the abandons in [from, to) after (after_at, after_id), filtered
-- by status ('' for all, short, called_back, not_called_back) and, when
-- spanned, to the spans [span_starts[i], span_ends[i]) (the instants of an
-- hour of the day or a day of the week, computed where the report groups
-- by them), with their first callback and the number of calls to the
-- number within the window.
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
  AND (NOT @spanned::boolean
       OR f.abandoned_at <@ (SELECT range_agg(tstzrange((@span_starts::timestamptz[])[g], (@span_ends::timestamptz[])[g], '[)'))
                             FROM generate_series(1, cardinality(@span_starts::timestamptz[])) AS g))
ORDER BY f.abandoned_at, f.event_id
LIMIT @max_rows::integer;

-- name: ReportHandledCounts :many
-- Inbound work items closed in [bounds[1], bounds[n]), counted per bucket
-- (bucket i holds [bounds[i], bounds[i+1])), with the latest receipt time
-- among their closes. Closes of the same work item id at the same time are
-- one work item (a repeat delivered under another idempotency key); a close
-- without a work item id is one on its own. The closes are grouped in the
-- order of events_handled_idx, as they are read from it, so that neither
-- they nor their work items are sorted or hashed.
SELECT width_bucket(g.occurred_at, @bounds::timestamptz[])::integer AS bucket,
       sum(g.closed)::bigint AS closed,
       max(g.last_received)::timestamptz AS last_received
FROM (
    SELECT e.occurred_at,
           CASE WHEN e.work_item_id IS NULL THEN count(*) ELSE 1 END AS closed,
           max(e.received_at) AS last_received
    FROM events e
    WHERE e.kind = 'service-hooks' AND e.type = 'workitem-closed' AND e.is_outbound IS FALSE
      AND e.occurred_at >= @from_at::timestamptz AND e.occurred_at < @to_at::timestamptz
    GROUP BY e.occurred_at, e.work_item_id
) g
GROUP BY 1
ORDER BY 1;

-- name: ReportHandled :many
-- The inbound work items closed in [from, to), one row per work item and
-- closing time (as ReportHandledCounts counts them) with the latest receipt
-- among its closes; closes without a work item id share a row, counted each.
SELECT e.occurred_at::timestamptz AS occurred_at,
       (CASE WHEN e.work_item_id IS NULL THEN count(*) ELSE 1 END)::bigint AS closed,
       max(e.received_at)::timestamptz AS last_received
FROM events e
WHERE e.kind = 'service-hooks' AND e.type = 'workitem-closed' AND e.is_outbound IS FALSE
  AND e.occurred_at >= @from_at::timestamptz AND e.occurred_at < @to_at::timestamptz
GROUP BY e.occurred_at, e.work_item_id
ORDER BY e.occurred_at, e.work_item_id;
