-- A timeline's types filter matches event types whatever their case: a
-- sender may write its types in any case (the case platform's event names
-- are free), and an analyst writes a filter as it comes (order_created for
-- ORDER_CREATED). casetrail_timeline_page is migration 00007's with ILIKE
-- for LIKE; the type is only ever a filter on rows read through a key's
-- index, so this changes no plan. CREATE OR REPLACE resets the function's
-- settings, so they are set again.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION casetrail_timeline_page(
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
                  AND e.type ILIKE ANY (p_type_patterns)
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
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION casetrail_timeline_page(
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
