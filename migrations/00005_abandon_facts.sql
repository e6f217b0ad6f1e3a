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

REVOKE ALL ON abandon_facts FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON abandon_facts TO casetrail_app;
REVOKE ALL ON FUNCTION casetrail_rebuild_abandon_facts() FROM PUBLIC;

-- +goose Down
DROP FUNCTION casetrail_rebuild_abandon_facts();
DROP FUNCTION casetrail_abandon_facts_derived();
DROP TABLE abandon_facts;
