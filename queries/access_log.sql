-- name: AccessLogInsert :one
-- The lock is held from taking the row's id to the statement's commit, so
-- that ids are taken in commit order: a reader paging by id never passes a
-- row that is still to commit (auditor requests are few; they wait in
-- turn for a moment).
WITH turn AS (SELECT pg_advisory_xact_lock(7310011))
INSERT INTO access_log (key_name, role, method, route, path, params, status, event_ids)
SELECT @key_name::text, @role::text, @method::text, @route::text, @path::text,
       @params::jsonb, @status::integer, @event_ids::bigint[]
FROM turn
RETURNING id, at;

-- name: AccessLogList :many
SELECT id, at, key_name, role, method, route, path, params, status, event_ids
FROM access_log
WHERE id > @after_id::bigint
ORDER BY id
LIMIT @row_limit::integer;

-- name: AccessLogListByKey :many
-- AccessLogList for one key's rows: one range of its index on
-- (key_name, id), written as a range of rows so that no plan walks the
-- log in id order and drops other keys' rows (key_name = the key and
-- id > the position did, for a busy key).
SELECT id, at, key_name, role, method, route, path, params, status, event_ids
FROM access_log
WHERE (key_name, id) > (@key_name::text, @after_id::bigint)
  AND (key_name, id) <= (@key_name::text, 9223372036854775807::bigint)
ORDER BY key_name, id
LIMIT @row_limit::integer;
