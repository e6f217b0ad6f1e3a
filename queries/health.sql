-- name: ServerSetting :one
SELECT current_setting(@name::text)::text AS value;
