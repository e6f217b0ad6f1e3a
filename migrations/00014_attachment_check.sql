-- The check verify and expunge make of an event's attachments: the first
-- attachment its indexed document refers to ({"sha256": hex, "size": n},
-- written in place of base64 content) that is not stored as it was, gone
-- or no longer of its SHA-256 and size; null when there is none. A
-- reference whose hash the body itself holds is the sender's own, not one
-- to a stored attachment.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION casetrail_bad_attachment(doc jsonb, body bytea) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT decode(h.v #>> '{}', 'hex')
    FROM jsonb_path_query(doc, 'lax $.**.sha256') AS h(v)
    WHERE jsonb_typeof(h.v) = 'string' AND (h.v #>> '{}') ~ '^[0-9a-f]{64}$'
      AND position(convert_to(h.v #>> '{}', 'UTF8') IN body) = 0
      AND NOT EXISTS (SELECT FROM blobs b
                      WHERE b.sha256 = decode(h.v #>> '{}', 'hex')
                        AND sha256(b.content) = b.sha256 AND octet_length(b.content) = b.size)
    LIMIT 1
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION casetrail_bad_attachment(jsonb, bytea);
