-- name: AccessLogInsert :one
INSERT INTO access_log (key_name, role, method, route, path, params, status, event_ids)
VALUES (@key_name::text, @role::text, @method::text, @route::text, @path::text,
        @params::jsonb, @status::integer, @event_ids::bigint[])
RETURNING id, at;

-- name: AccessLogList :many
SELECT id, at, key_name, role, method, route, path, params, status, event_ids
FROM access_log
WHERE id > @after_id::bigint
  AND (sqlc.narg('key_name')::text IS NULL OR key_name = sqlc.narg('key_name')::text)
ORDER BY id
LIMIT @row_limit::integer;
