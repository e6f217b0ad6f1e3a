-- Which events refer to which attachment, kept as the events are stored,
-- so that an auditor's download of an attachment is recorded in the access
-- log with the events whose documents refer to it (GET /v1/blobs/{sha256}).
-- A reference outlives its attachment: an expunge removes the attachment,
-- not the fact that the expunged event referred to it, which the record of
-- a later download of it (404) still names.
--
-- casetrail_ingest as in 00009, taking the references of the batch's
-- events (p_ref_ord, p_ref_sha256) and keeping those of the events stored
-- now. Locks are still taken in one order by every batch: keys (sorted),
-- then attachments (sorted by hash), then the abandonment projection's
-- numbers; the references are new rows and wait for no other batch.

-- +goose Up
CREATE TABLE event_attachments (
    sha256   bytea  NOT NULL,
    event_id bigint NOT NULL,
    PRIMARY KEY (sha256, event_id)
);

CREATE TRIGGER event_attachments_append_only BEFORE UPDATE OR DELETE ON event_attachments
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER event_attachments_no_truncate BEFORE TRUNCATE ON event_attachments
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();

REVOKE ALL ON event_attachments FROM PUBLIC;
GRANT SELECT, INSERT ON event_attachments TO casetrail_app;

-- Where the backfill below may fall short: a server of the earlier version
-- still storing while this runs commits events after the backfill's
-- snapshot, through the earlier function (a call under way keeps its body
-- after the function is replaced), without references. Their commit_xid
-- is at or past this horizon and they were received before this migration
-- committed; casetrail_attachments_catch_up() reads them again. An hour
-- after the migration no such call can still be under way (lock_timeout
-- is 30 s), and the first catch-up past it is the last. An expunge runs
-- it before it trusts the references (internal/store/expunge.go).
CREATE TABLE event_attachments_backfill (
    horizon     bigint      NOT NULL,
    migrated_at timestamptz NOT NULL
);
REVOKE ALL ON event_attachments_backfill FROM PUBLIC;
-- casetrail verify, as the server's role, passes over the events in the
-- window until the catch-up has read them, so it reads the window.
GRANT SELECT ON event_attachments_backfill TO casetrail_app;
-- A store with no events yet has had no server storing before this.
INSERT INTO event_attachments_backfill (horizon, migrated_at)
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, clock_timestamp()
WHERE EXISTS (SELECT FROM events);

-- The attachments an event stored before this refers to, read from its
-- document: a hash under a "sha256" key that names a stored attachment (as
-- expunge finds them, ExpungeBlobCandidates), or, when the attachment is
-- gone, one the event's body does not hold (as verify tells a reference
-- from the sender's own hash, casetrail_bad_attachment): the event referred
-- to it all the same. The backfill below, its catch-up and verify's check
-- of the references all take them by this rule.
-- +goose StatementBegin
CREATE FUNCTION casetrail_document_attachments(doc jsonb, body bytea) RETURNS SETOF bytea
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT h.sha256
    FROM (SELECT decode(v #>> '{}', 'hex') AS sha256
          FROM jsonb_path_query(doc, 'lax $.**.sha256') AS q(v)
          WHERE jsonb_typeof(v) = 'string' AND (v #>> '{}') ~ '^[0-9a-f]{64}$') h
    WHERE EXISTS (SELECT FROM blobs b WHERE b.sha256 = h.sha256)
       OR position(convert_to(encode(h.sha256, 'hex'), 'UTF8') IN body) = 0
$$;
-- +goose StatementEnd

-- The references of the events stored before, read from every stored
-- document once. An expunged event's document is gone; the attachments
-- removed with it are in its record (those another event still shared are
-- not, and cannot be found again).
INSERT INTO event_attachments (sha256, event_id)
SELECT r.sha256, e.id
FROM events e
CROSS JOIN LATERAL casetrail_document_attachments(e.doc, e.body) AS r(sha256)
WHERE e.doc IS NOT NULL
UNION
SELECT s.sha256, x.event_id
FROM expunged_events x
CROSS JOIN LATERAL unnest(x.blobs) AS s(sha256)
ORDER BY 1, 2;

DROP FUNCTION casetrail_ingest(text[], text[], boolean[], bytea[], timestamptz[], timestamptz[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], bigint[], text[], jsonb[], jsonb[], text[], text[], bytea[], jsonb[], boolean[], jsonb[], bytea[], bigint[], bytea[], integer[], integer[], integer[]);
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
    p_ref_ord integer[], p_ref_sha256 bytea[],
    p_lock_key integer[], p_abandon_ord integer[], p_call_ord integer[]
) RETURNS TABLE (ord integer, event_id bigint, stored boolean, held_sha256 bytea)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_ids bigint[]; -- the new event id per position, NULL where the key was held
    v_locks integer[];
BEGIN
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

    -- The attachments of the events stored now: all of the batch's when
    -- every key was free, else those a stored event refers to (by the
    -- references below, not by a hash its document merely names), so that
    -- a repeat never brings back an attachment an expunge removed.
    IF cardinality(p_blob_sha256) > 0 THEN
        INSERT INTO blobs (sha256, size, content)
        SELECT b.sha256, b.size, b.content
        FROM unnest(p_blob_sha256, p_blob_size, p_blob_content) AS b(sha256, size, content)
        WHERE array_position(v_ids, NULL) IS NULL
           OR EXISTS (SELECT FROM unnest(p_ref_ord, p_ref_sha256) AS r(ord, sha256)
                      WHERE r.sha256 = b.sha256 AND v_ids[r.ord] IS NOT NULL)
        ON CONFLICT (sha256) DO NOTHING;
    END IF;

    -- Which stored event refers to which attachment (p_ref_ord: positions
    -- in the batch, each pair once), for the events stored now: a repeat
    -- adds none. The rows are new (each event id is new), so they take no
    -- lock another batch could wait for.
    IF cardinality(p_ref_ord) > 0 THEN
        INSERT INTO event_attachments (sha256, event_id)
        SELECT r.sha256, v_ids[r.ord]
        FROM unnest(p_ref_ord, p_ref_sha256) AS r(ord, sha256)
        WHERE v_ids[r.ord] IS NOT NULL
        ORDER BY 1, 2;
    END IF;

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
-- A new function has none of the old one's settings and grants: those of
-- 00006 again.
ALTER FUNCTION casetrail_ingest SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION casetrail_ingest SET lock_timeout = '30s';
REVOKE ALL ON FUNCTION casetrail_ingest FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casetrail_ingest TO casetrail_app;

-- +goose StatementBegin
CREATE FUNCTION casetrail_attachments_catch_up() RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    v_horizon bigint;
    v_until   timestamptz;
    v_added   bigint;
BEGIN
    SELECT horizon, migrated_at INTO v_horizon, v_until FROM event_attachments_backfill;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- Received before the migration committed (an hour's leeway for the
    -- clocks of the servers that set received_at), which also leaves out
    -- the partitions of later months.
    INSERT INTO event_attachments (sha256, event_id)
    SELECT r.sha256, e.id
    FROM events e
    CROSS JOIN LATERAL casetrail_document_attachments(e.doc, e.body) AS r(sha256)
    WHERE e.commit_xid >= v_horizon
      AND e.received_at < v_until + interval '1 hour'
      AND e.doc IS NOT NULL
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    IF clock_timestamp() > v_until + interval '1 hour' THEN
        DELETE FROM event_attachments_backfill;
    END IF;
    RETURN v_added;
END
$fn$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION casetrail_attachments_catch_up() FROM PUBLIC;
-- The window's end: when this migration commits, as near as it can tell.
UPDATE event_attachments_backfill SET migrated_at = clock_timestamp();

-- +goose Down
-- A reference of an expunged event to an attachment that was not removed
-- with it (another event still referred to it) is kept nowhere else.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM event_attachments a
               JOIN expunged_events x ON x.event_id = a.event_id
               WHERE NOT a.sha256 = ANY (x.blobs)) THEN
        RAISE EXCEPTION 'casetrail: event_attachments holds references of expunged events that are kept nowhere else; undoing this migration would drop them, so it cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION casetrail_ingest(text[], text[], boolean[], bytea[], timestamptz[], timestamptz[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], bigint[], text[], jsonb[], jsonb[], text[], text[], bytea[], jsonb[], boolean[], jsonb[], bytea[], bigint[], bytea[], integer[], bytea[], integer[], integer[], integer[]);
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

    -- The attachments of the events stored now: all of the batch's when
    -- every key was free, else those a stored event's document refers to,
    -- so that a repeat never brings back an attachment an expunge removed.
    IF cardinality(p_blob_sha256) > 0 THEN
        INSERT INTO blobs (sha256, size, content)
        SELECT b.sha256, b.size, b.content
        FROM unnest(p_blob_sha256, p_blob_size, p_blob_content) AS b(sha256, size, content)
        WHERE array_position(v_ids, NULL) IS NULL
           OR EXISTS (SELECT FROM unnest(v_ids, p_doc) AS d(id, doc)
                      WHERE d.id IS NOT NULL AND strpos(d.doc::text, encode(b.sha256, 'hex')) > 0)
        ON CONFLICT (sha256) DO NOTHING;
    END IF;

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
ALTER FUNCTION casetrail_ingest SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION casetrail_ingest SET lock_timeout = '30s';
REVOKE ALL ON FUNCTION casetrail_ingest FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casetrail_ingest TO casetrail_app;
DROP FUNCTION casetrail_attachments_catch_up();
DROP FUNCTION casetrail_document_attachments(jsonb, bytea);
DROP TABLE event_attachments_backfill;
DROP TABLE event_attachments;
