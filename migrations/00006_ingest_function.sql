-- +goose Up

-- A batch of events is stored by one call of this function, in one
-- statement and so in one transaction, committed when the call returns:
-- one round trip to the database per batch, whatever its size. In order:
-- the attachments, the idempotency keys (each free key claims a new event
-- id, in the batch's lock order), the events whose keys were free, and the
-- abandonment projection's upkeep for the abandons and outbound calls among
-- them. It answers, for every event of the batch in its order, the event id
-- and whether it was stored now; for a key already held, the holder's id
-- and body hash, read after the claim so that a holder that committed
-- meanwhile is seen.
--
-- The arrays are parallel, one element per event, with keys distinct and
-- sorted. Absent text and JSON values are '' and NULL, an absent time in
-- queue is -1, is_outbound is '', 'true' or 'false'. p_abandon_ord and
-- p_call_ord are the 1-based positions of the batch's abandons and of its
-- outbound calls with a number; p_lock_key is, at those positions, the lock
-- key of the number (casetrail_project_abandons).
--
-- The function must stay VOLATILE: each statement then takes a new
-- snapshot, so the holder of a key that the claim waited for is visible to
-- the last one.
-- +goose StatementBegin
CREATE FUNCTION casetrail_ingest(
    p_source text[], p_key text[], p_explicit boolean[], p_body_sha256 bytea[],
    p_received_at timestamptz[], p_occurred_at timestamptz[], p_kind text[], p_type text[],
    p_credential text[], p_case_id text[], p_phone text[], p_customer_id text[],
    p_conversation_id text[], p_agent_id text[], p_work_item_id text[], p_queue text[],
    p_time_in_queue_ms bigint[], p_is_outbound text[], p_actor jsonb[], p_changes jsonb[],
    p_summary text[], p_content_type text[], p_body bytea[], p_doc jsonb[],
    p_doc_lossy boolean[], p_reply jsonb[],
    p_blob_sha256 bytea[], p_blob_size bigint[], p_blob_content bytea[],
    p_lock_key integer[], p_abandon_ord integer[], p_call_ord integer[]
) RETURNS TABLE (ord integer, event_id bigint, stored boolean, held_sha256 bytea)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_ids bigint[]; -- the new event id per position, NULL where the key was held
    v_locks integer[];
BEGIN
    IF cardinality(p_blob_sha256) > 0 THEN
        INSERT INTO blobs (sha256, size, content)
        SELECT b.sha256, b.size, b.content
        FROM unnest(p_blob_sha256, p_blob_size, p_blob_content) AS b(sha256, size, content)
        ON CONFLICT (sha256) DO NOTHING;
    END IF;

    WITH claimed AS (
        INSERT INTO idempotency_keys (source, key, explicit, body_sha256, event_id, received_at)
        SELECT i.source, i.key, i.explicit, i.sha, nextval('events_id_seq'), i.at
        FROM unnest(p_source, p_key, p_explicit, p_body_sha256, p_received_at)
             WITH ORDINALITY AS i(source, key, explicit, sha, at, n)
        ORDER BY i.n
        ON CONFLICT (source, key) DO NOTHING
        RETURNING source, key, event_id
    )
    SELECT array_agg(c.event_id ORDER BY i.n) INTO v_ids
    FROM unnest(p_source, p_key) WITH ORDINALITY AS i(source, key, n)
    LEFT JOIN claimed c ON c.source = i.source AND c.key = i.key;

    INSERT INTO events (
        id, received_at, occurred_at, source, kind, type, credential, idempotency_key,
        case_id, phone, customer_id, conversation_id, agent_id, work_item_id, queue,
        time_in_queue_ms, is_outbound, actor, changes, summary, content_type,
        body, body_sha256, doc, doc_lossy, reply
    )
    SELECT e.id, e.received_at, e.occurred_at, e.source, e.kind, e.type, e.credential, e.key,
           nullif(e.case_id, ''), nullif(e.phone, ''), nullif(e.customer_id, ''),
           nullif(e.conversation_id, ''), nullif(e.agent_id, ''), nullif(e.work_item_id, ''),
           nullif(e.queue, ''), nullif(e.tiq, -1), nullif(e.outbound, '')::boolean,
           e.actor, e.changes, e.summary, e.content_type, e.body, e.sha, e.doc, e.lossy, e.reply
    FROM unnest(v_ids, p_received_at, p_occurred_at, p_source, p_kind, p_type, p_credential, p_key,
                p_case_id, p_phone, p_customer_id, p_conversation_id, p_agent_id, p_work_item_id,
                p_queue, p_time_in_queue_ms, p_is_outbound, p_actor, p_changes, p_summary,
                p_content_type, p_body, p_body_sha256, p_doc, p_doc_lossy, p_reply)
         AS e(id, received_at, occurred_at, source, kind, type, credential, key,
              case_id, phone, customer_id, conversation_id, agent_id, work_item_id,
              queue, tiq, outbound, actor, changes, summary,
              content_type, body, sha, doc, lossy, reply)
    WHERE e.id IS NOT NULL;

    -- Only the abandons and calls stored now count, and only their numbers
    -- are locked: a batch of repeats takes no lock.
    IF EXISTS (SELECT FROM unnest(p_abandon_ord || p_call_ord) AS o WHERE v_ids[o] IS NOT NULL) THEN
        SELECT coalesce(array_agg(DISTINCT p_lock_key[o] ORDER BY p_lock_key[o]), '{}') INTO v_locks
        FROM unnest(p_abandon_ord || p_call_ord) AS o
        WHERE v_ids[o] IS NOT NULL AND p_phone[o] <> '';
        -- Repeats of one abandon within the batch (same number, time and
        -- queue) are represented by the smallest id, as against the store;
        -- an abandon without a number is its own caller.
        PERFORM casetrail_project_abandons(v_locks,
            coalesce(a.ids, '{}'), coalesce(a.ats, '{}'), coalesce(a.received, '{}'),
            coalesce(a.queues, '{}'), coalesce(a.phones, '{}'), coalesce(a.tiqs, '{}'),
            coalesce(c.ids, '{}'), coalesce(c.phones, '{}'), coalesce(c.ats, '{}'), coalesce(c.agents, '{}'))
        FROM (
            SELECT array_agg(x.id) AS ids, array_agg(x.at) AS ats, array_agg(x.received) AS received,
                   array_agg(x.queue) AS queues, array_agg(x.phone) AS phones, array_agg(x.tiq) AS tiqs
            FROM (
                SELECT DISTINCT ON (coalesce(nullif(p_phone[o], ''), v_ids[o]::text), p_occurred_at[o], p_queue[o])
                       v_ids[o] AS id, p_occurred_at[o] AS at, p_received_at[o] AS received,
                       p_queue[o] AS queue, p_phone[o] AS phone, p_time_in_queue_ms[o] AS tiq
                FROM unnest(p_abandon_ord) AS o
                WHERE v_ids[o] IS NOT NULL
                ORDER BY coalesce(nullif(p_phone[o], ''), v_ids[o]::text), p_occurred_at[o], p_queue[o], v_ids[o]
            ) x
        ) a, (
            SELECT array_agg(v_ids[o]) AS ids, array_agg(p_phone[o]) AS phones,
                   array_agg(p_occurred_at[o]) AS ats, array_agg(p_agent_id[o]) AS agents
            FROM unnest(p_call_ord) AS o
            WHERE v_ids[o] IS NOT NULL
        ) c;
    END IF;

    IF array_position(v_ids, NULL) IS NULL THEN
        RETURN QUERY
        SELECT i.n::integer, i.id, true, NULL::bytea
        FROM unnest(v_ids) WITH ORDINALITY AS i(id, n)
        ORDER BY i.n;
    ELSE
        -- Scalar subqueries, so that each held key is one index lookup.
        RETURN QUERY
        SELECT i.n::integer,
               coalesce(i.id, (SELECT h.event_id FROM idempotency_keys h WHERE h.source = i.source AND h.key = i.key)),
               i.id IS NOT NULL,
               CASE WHEN i.id IS NULL THEN
                   (SELECT h.body_sha256 FROM idempotency_keys h WHERE h.source = i.source AND h.key = i.key)
               END
        FROM unnest(v_ids, p_source, p_key) WITH ORDINALITY AS i(id, source, key, n)
        ORDER BY i.n;
    END IF;
END
$fn$;
-- +goose StatementEnd

-- The projection's upkeep as in 00005, but each new call updates its own
-- number's abandons through the index on (phone, abandoned_at).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION casetrail_project_abandons(
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
    -- One index-driven UPDATE per call: a call can only become the callback
    -- of its own number's earlier abandons, and a statement joining all
    -- calls with the table could be planned as a scan of all of it.
    FOR i IN 1 .. coalesce(cardinality(p_call_id), 0) LOOP
        UPDATE abandon_facts AS f
        SET callback_at = p_call_at[i], callback_agent = nullif(p_call_agent[i], ''), callback_event_id = p_call_id[i]
        WHERE f.phone = p_call_phone[i] AND f.abandoned_at < p_call_at[i]
          AND (f.callback_at IS NULL OR f.callback_at > p_call_at[i]
               OR (f.callback_at = p_call_at[i] AND f.callback_event_id > p_call_id[i]));
    END LOOP;
END
$fn$;
-- +goose StatementEnd

-- Both functions take arrays; a custom plan knows their lengths but chooses
-- the same plan, and planning on every call costs more than the work.
ALTER FUNCTION casetrail_ingest SET plan_cache_mode = force_generic_plan;
-- A batch waits for a lock (a key or a number another transaction holds)
-- at most this long; then its senders get 503 and retry.
ALTER FUNCTION casetrail_ingest SET lock_timeout = '30s';
ALTER FUNCTION casetrail_project_abandons SET plan_cache_mode = force_generic_plan;

REVOKE ALL ON FUNCTION casetrail_ingest FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casetrail_ingest TO casetrail_app;

-- +goose Down
ALTER FUNCTION casetrail_project_abandons RESET plan_cache_mode;
DROP FUNCTION casetrail_ingest;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION casetrail_project_abandons(
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
