-- The abandonment report's projection: one row per distinct abandon (a
-- repeated delivery of the same number, time and queue counts once) with the
-- first outbound call to its number after it. The ingest transaction that
-- stores an abandon or an outbound call keeps it current, so a report reads
-- one narrow row per abandon and never joins abandons with calls.
--
-- The projection is derived data, not part of the record: it may be updated
-- (a later outbound call becomes an earlier abandon's first callback, or a
-- late delivery with a smaller event id becomes the representative), and
-- casetrail_rebuild_abandon_facts() rebuilds it from the events at any time.
-- Which call is first does not depend on the report's callback window: an
-- abandon was called back within a window exactly when its first call after
-- it falls inside that window.

-- +goose Up
CREATE TABLE abandon_facts (
    event_id          bigint      PRIMARY KEY,
    abandoned_at      timestamptz NOT NULL,
    received_at       timestamptz NOT NULL,
    queue             text        NOT NULL,
    phone             text,
    -- The identity of the abandon: its number, or its own event when it
    -- names none.
    caller            text        NOT NULL,
    time_in_queue_ms  bigint,
    callback_at       timestamptz,
    callback_agent    text,
    callback_event_id bigint,
    UNIQUE (caller, abandoned_at, queue)
);
CREATE INDEX abandon_facts_at_idx ON abandon_facts (abandoned_at, event_id);
-- Finding the earlier abandons of a number when an outbound call arrives.
CREATE INDEX abandon_facts_phone_idx ON abandon_facts (phone, abandoned_at) WHERE phone IS NOT NULL;

-- The projection as it follows from the events alone.
-- +goose StatementBegin
CREATE FUNCTION casetrail_abandon_facts_derived()
RETURNS SETOF abandon_facts
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (coalesce(e.phone, e.id::text), e.occurred_at, coalesce(e.queue, ''))
           e.id, e.occurred_at, e.received_at, coalesce(e.queue, ''), e.phone,
           coalesce(e.phone, e.id::text), e.time_in_queue_ms,
           cb.occurred_at, cb.agent_id, cb.id
    FROM events e
    LEFT JOIN LATERAL (
        SELECT o.occurred_at, o.agent_id, o.id
        FROM events o
        WHERE o.kind = 'service-hooks' AND o.type = 'outbound-call'
          AND o.phone = e.phone AND o.occurred_at > e.occurred_at
        ORDER BY o.occurred_at, o.id
        LIMIT 1
    ) cb ON true
    WHERE e.kind = 'service-hooks' AND e.type = 'abandoned-conversation'
    ORDER BY coalesce(e.phone, e.id::text), e.occurred_at, coalesce(e.queue, ''), e.id
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION casetrail_rebuild_abandon_facts() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    LOCK TABLE abandon_facts IN EXCLUSIVE MODE;
    DELETE FROM abandon_facts;
    -- In time order, as live traffic would have stored them: the report
    -- reads a range of time.
    INSERT INTO abandon_facts SELECT * FROM casetrail_abandon_facts_derived() ORDER BY abandoned_at, event_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
-- +goose StatementEnd

SELECT casetrail_rebuild_abandon_facts();

-- The ingest transaction's upkeep of the projection, in one round trip:
-- the advisory locks on the numbers (sorted keys), then the new abandons
-- with the first calls already stored after them, then the new calls as
-- the first callback of the earlier abandons that had none or a later one.
-- Each statement takes its snapshot after the locks are held, so an abandon
-- and a call to its number committed at the same moment find each other.
-- Repeats of one abandon must already be removed from the arrays; against
-- the store, the repeat with the smallest event id represents it.
-- +goose StatementBegin
CREATE FUNCTION casetrail_project_abandons(
    p_lock_keys integer[],
    p_abandon_id bigint[], p_abandoned_at timestamptz[], p_received_at timestamptz[],
    p_queue text[], p_abandon_phone text[], p_time_in_queue_ms bigint[],
    p_call_id bigint[], p_call_phone text[], p_call_at timestamptz[], p_call_agent text[]
) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(1129595206, k) FROM unnest(p_lock_keys) AS k;
    IF cardinality(p_abandon_id) > 0 THEN
        INSERT INTO abandon_facts (
            event_id, abandoned_at, received_at, queue, phone, caller, time_in_queue_ms,
            callback_at, callback_agent, callback_event_id
        )
        SELECT a.id, a.abandoned_at, a.received_at, a.queue, nullif(a.phone, ''),
               coalesce(nullif(a.phone, ''), a.id::text), nullif(a.time_in_queue_ms, -1),
               cb.occurred_at, cb.agent_id, cb.id
        FROM (
            SELECT p_abandon_id[g]::bigint AS id,
                   p_abandoned_at[g]::timestamptz AS abandoned_at,
                   p_received_at[g]::timestamptz AS received_at,
                   p_queue[g]::text AS queue,
                   p_abandon_phone[g]::text AS phone,
                   p_time_in_queue_ms[g]::bigint AS time_in_queue_ms
            FROM generate_series(1, cardinality(p_abandon_id)) AS g
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
    END IF;
    IF cardinality(p_call_id) > 0 THEN
        UPDATE abandon_facts AS f
        SET callback_at = c.at, callback_agent = nullif(c.agent, ''), callback_event_id = c.id
        FROM (
            SELECT DISTINCT ON (x.event_id) x.event_id, o.at, o.agent, o.id
            FROM abandon_facts x
            JOIN (
                SELECT p_call_id[g]::bigint AS id,
                       p_call_phone[g]::text AS phone,
                       p_call_at[g]::timestamptz AS at,
                       p_call_agent[g]::text AS agent
                FROM generate_series(1, cardinality(p_call_id)) AS g
            ) o ON x.phone = o.phone AND x.abandoned_at < o.at
            ORDER BY x.event_id, o.at, o.id
        ) c
        WHERE f.event_id = c.event_id
          AND (f.callback_at IS NULL OR f.callback_at > c.at OR (f.callback_at = c.at AND f.callback_event_id > c.id));
    END IF;
END
$fn$;
-- +goose StatementEnd

-- Reports read abandons from the projection now; the index of abandons in
-- events would only cost every stored abandon an index entry. (A rebuild
-- scans the events instead.)
DROP INDEX events_abandoned_idx;

REVOKE ALL ON abandon_facts FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON abandon_facts TO casetrail_app;
REVOKE ALL ON FUNCTION casetrail_rebuild_abandon_facts() FROM PUBLIC;
REVOKE ALL ON FUNCTION casetrail_project_abandons FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casetrail_project_abandons TO casetrail_app;

-- +goose Down
CREATE INDEX events_abandoned_idx ON events (occurred_at)
    INCLUDE (phone, queue, time_in_queue_ms, received_at)
    WHERE kind = 'service-hooks' AND type = 'abandoned-conversation';
DROP FUNCTION casetrail_project_abandons;
DROP FUNCTION casetrail_rebuild_abandon_facts();
DROP FUNCTION casetrail_abandon_facts_derived();
DROP TABLE abandon_facts;
