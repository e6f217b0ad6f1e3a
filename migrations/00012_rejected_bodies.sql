-- The bodies of kept rejected requests live in a table of their own, keyed
-- by their SHA-256 and stored once however often they are sent (a sender
-- that retries a refused request sends the same body again).
--
-- A rejected request's row takes its id in commit order: its insert holds
-- an advisory lock from taking the id to its commit (queries/rejected.sql).
-- With the body in the row, the lock was held while the body was written,
-- and a 413's body is kept up to max_body_bytes (32 MiB by default): every
-- refusal behind it waited. The one statement that keeps a request now
-- writes the body before it takes the lock, and the row it then writes is
-- small.
--
-- Rows kept before this migration keep their body in rejected_requests.body
-- and have no body_sha256; rows kept after it have an empty body there.

-- +goose Up
CREATE TABLE rejected_bodies (
    sha256 bytea PRIMARY KEY CHECK (octet_length(sha256) = 32),
    body   bytea NOT NULL
);

CREATE TRIGGER rejected_bodies_append_only BEFORE UPDATE OR DELETE ON rejected_bodies
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER rejected_bodies_no_truncate BEFORE TRUNCATE ON rejected_bodies
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();

REVOKE ALL ON rejected_bodies FROM PUBLIC;
GRANT SELECT, INSERT ON rejected_bodies TO casetrail_app;

ALTER TABLE rejected_requests ADD COLUMN body_sha256 bytea REFERENCES rejected_bodies (sha256);

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM rejected_bodies) THEN
        RAISE EXCEPTION 'casetrail: rejected requests keep their bodies in rejected_bodies; undoing this migration would drop them, so it cannot be undone';
    END IF;
END $$;
-- +goose StatementEnd
ALTER TABLE rejected_requests DROP COLUMN body_sha256;
DROP TABLE rejected_bodies;
