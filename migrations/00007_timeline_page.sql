-- Timelines read page by page, each key on its own.

-- +goose Up

-- One page of a timeline: a case's events and the contact-center events
-- correlated with it (p_case_id set), or a contact's events (p_case_id null):
-- those of the given numbers, customer ids and conversation ids, keyset-
-- paginated on (occurred_at, id) after (p_after_at, p_after_id), oldest or
-- newest first. It answers the page's events by their primary key, in no
-- particular order; the caller reads and sorts them.
--
-- Each key is read on its own, in the order of its index on (key,
-- occurred_at, id), and only as far as a page: a number with a hundred
-- thousand events costs a page of them, not all of them. The page is the
-- first p_limit events of the keys' pages together; an event matching
-- several keys counts once.
--
-- The statements are planned once per session (generic plans), with sorting
-- disabled. The keys arrive through unnest in a lateral join, so the planner
-- sees a column, not a number, and expects a few events per key: planned for
-- each call, it sorted them, which reads every event of a busy number for
-- each page. With sorting disabled, a key is read in index order whatever the
-- estimates; TestTimelineReadsAPageOfEachKey checks what a page reads. Unset
-- bounds are infinities, so that every bound is an index condition (an
-- occurrence time is always finite: ingest takes it from a Go time).
--
-- For a case, a number's events that are not contact-center events are read
-- and skipped: a case correlated with a number that mostly carries other
-- cases' updates reads past those. BenchmarkTimelineBusyContact measures it.
--
-- Each key and direction needs a statement of its own to be read through
-- its index, so the filters are written out eight times;
-- TestTimelineMatchesReference compares every combination with a reference.
-- +goose StatementBegin
CREATE FUNCTION casetrail_timeline_page(
    p_case_id text, p_phones text[], p_customer_ids text[], p_conversation_ids text[],
    p_type_patterns text[], p_from timestamptz, p_to timestamptz,
    p_after_at timestamptz, p_after_id bigint, p_ascending boolean, p_limit integer
) RETURNS TABLE (event_id bigint, event_received_at timestamptz)
LANGUAGE plpgsql STABLE ROWS 100 AS $fn$
#variable_conflict use_column
DECLARE
    v_from timestamptz := coalesce(p_from, '-infinity');
    v_to timestamptz := coalesce(p_to, 'infinity');
    v_after_asc timestamptz := coalesce(p_after_at, '-infinity');
    v_after_desc timestamptz := coalesce(p_after_at, 'infinity');
BEGIN
    IF p_ascending THEN
        RETURN QUERY
        SELECT h.id, h.received_at
        FROM (
            SELECT DISTINCT ON (u.occurred_at, u.id) u.id, u.received_at, u.occurred_at
            FROM (
            (SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.case_id = p_case_id
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) > (v_after_asc, p_after_id)
                ORDER BY e.occurred_at, e.id
                LIMIT p_limit)
            UNION ALL
            SELECT x.* FROM unnest(p_phones) AS k(v) CROSS JOIN LATERAL (
                SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.phone = k.v
                  AND (p_case_id IS NULL OR e.kind = 'service-hooks')
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) > (v_after_asc, p_after_id)
                ORDER BY e.occurred_at, e.id
                LIMIT p_limit
            ) x
            UNION ALL
            SELECT x.* FROM unnest(p_customer_ids) AS k(v) CROSS JOIN LATERAL (
                SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.customer_id = k.v
                  AND (p_case_id IS NULL OR e.kind = 'service-hooks')
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) > (v_after_asc, p_after_id)
                ORDER BY e.occurred_at, e.id
                LIMIT p_limit
            ) x
            UNION ALL
            SELECT x.* FROM unnest(p_conversation_ids) AS k(v) CROSS JOIN LATERAL (
                SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.conversation_id = k.v
                  AND (p_case_id IS NULL OR e.kind = 'service-hooks')
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) > (v_after_asc, p_after_id)
                ORDER BY e.occurred_at, e.id
                LIMIT p_limit
            ) x
            ) u
            ORDER BY u.occurred_at, u.id
            LIMIT p_limit
        ) h;
    ELSE
        RETURN QUERY
        SELECT h.id, h.received_at
        FROM (
            SELECT DISTINCT ON (u.occurred_at, u.id) u.id, u.received_at, u.occurred_at
            FROM (
            (SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.case_id = p_case_id
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) < (v_after_desc, p_after_id)
                ORDER BY e.occurred_at DESC, e.id DESC
                LIMIT p_limit)
            UNION ALL
            SELECT x.* FROM unnest(p_phones) AS k(v) CROSS JOIN LATERAL (
                SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.phone = k.v
                  AND (p_case_id IS NULL OR e.kind = 'service-hooks')
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) < (v_after_desc, p_after_id)
                ORDER BY e.occurred_at DESC, e.id DESC
                LIMIT p_limit
            ) x
            UNION ALL
            SELECT x.* FROM unnest(p_customer_ids) AS k(v) CROSS JOIN LATERAL (
                SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.customer_id = k.v
                  AND (p_case_id IS NULL OR e.kind = 'service-hooks')
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) < (v_after_desc, p_after_id)
                ORDER BY e.occurred_at DESC, e.id DESC
                LIMIT p_limit
            ) x
            UNION ALL
            SELECT x.* FROM unnest(p_conversation_ids) AS k(v) CROSS JOIN LATERAL (
                SELECT e.id, e.received_at, e.occurred_at
                FROM events e
                WHERE e.conversation_id = k.v
                  AND (p_case_id IS NULL OR e.kind = 'service-hooks')
                  AND e.type LIKE ANY (p_type_patterns)
                  AND e.occurred_at >= v_from AND e.occurred_at < v_to
                  AND (e.occurred_at, e.id) < (v_after_desc, p_after_id)
                ORDER BY e.occurred_at DESC, e.id DESC
                LIMIT p_limit
            ) x
            ) u
            ORDER BY u.occurred_at DESC, u.id DESC
            LIMIT p_limit
        ) h;
    END IF;
END
$fn$;
-- +goose StatementEnd

ALTER FUNCTION casetrail_timeline_page SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION casetrail_timeline_page SET enable_sort = off;
-- The sorts left (of the keys' pages together) then carry the cost that
-- disables them, which would compile every call's statement just in time.
ALTER FUNCTION casetrail_timeline_page SET jit = off;
REVOKE ALL ON FUNCTION casetrail_timeline_page FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casetrail_timeline_page TO casetrail_app;

-- +goose Down
DROP FUNCTION casetrail_timeline_page;
