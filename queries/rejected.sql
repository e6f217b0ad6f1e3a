-- name: RejectedInsert :one
INSERT INTO rejected_requests (
    received_at, source, event_type, status, cause, detail, credential,
    content_type, body, body_size, body_truncated
) VALUES (
    @received_at::timestamptz, @source::text, @event_type::text, @status::integer,
    @cause::text, @detail::text, @credential::text, @content_type::text,
    @body::bytea, @body_size::bigint, @body_truncated::boolean
)
RETURNING id;

-- name: RejectedList :many
SELECT *
FROM rejected_requests
WHERE source = @source::text
ORDER BY id;
