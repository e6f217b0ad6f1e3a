-- name: AccessLogInsert :one
INSERT INTO access_log (key_name, role, method, route, path, params, status, event_ids)
VALUES (@key_name::text, @role::text, @method::text, @route::text, @path::text,
        @params::jsonb, @status::integer, @event_ids::bigint[])
RETURNING id, at;

-- name: AccessLogPosition :one
-- Where a row stands in the listing's order: a page's cursor is the id of
-- its last row.
SELECT commit_xid FROM access_log WHERE id = @id::bigint;

-- name: AccessLogList :many
-- The rows after a position in commit-safe order, (commit_xid, id), and
-- only those of transactions older than every one still in progress, so no
-- row can commit behind a page already read (casetrail_feed_horizon, as
-- the event feed's sequencer reads events).
SELECT id, at, key_name, role, method, route, path, params, status, event_ids, commit_xid
FROM access_log
WHERE (commit_xid, id) > (@after_xid::bigint, @after_id::bigint)
  AND commit_xid < (SELECT casetrail_feed_horizon())
ORDER BY commit_xid, id
LIMIT @row_limit::integer;

-- name: AccessLogListByKey :many
-- AccessLogList for one key's rows: the range of the key's index on
-- (key_name, commit_xid, id) from the position to the horizon, read in
-- index order. Written as "key_name = the key", the statement's generic
-- plan (any key alike) walked every row in commit order and dropped other
-- keys' rows, nearly the whole table for a key with few rows; as one range
-- of this index, no other order or index serves it.
SELECT id, at, key_name, role, method, route, path, params, status, event_ids, commit_xid
FROM access_log
WHERE (key_name, commit_xid, id) > (@key_name::text, @after_xid::bigint, @after_id::bigint)
  AND (key_name, commit_xid, id) < (@key_name::text, (SELECT casetrail_feed_horizon()), 0::bigint)
ORDER BY key_name, commit_xid, id
LIMIT @row_limit::integer;
