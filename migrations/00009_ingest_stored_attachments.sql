-- casetrail_ingest as in 00006, but the attachments are stored after the
-- events and only for the events stored now: a repeat of a delivery whose
-- event was expunged (00008) must not store its attachments again. Locks
-- are still taken in one order by every batch: keys (sorted), then
-- attachments (sorted by hash), then the abandonment projection's numbers.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION casetrail_ingest(
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
-- Replacing a function resets its settings: those of 00006 again.
ALTER FUNCTION casetrail_ingest SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION casetrail_ingest SET lock_timeout = '30s';

-- +goose Down
-- The function above works with the schema before it as well; it stays.
SELECT 1;
