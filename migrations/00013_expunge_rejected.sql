-- Erasure reaches the bodies of kept rejected requests (casetrail expunge
-- --rejected): a refused request may hold as much PHI as a stored event.
-- Rejected requests are in no log, so the record of an expunge needs no
-- signature: it says which request, when, why, and the SHA-256 of the body
-- it erased. The body is blanked, and so are the request's detail and event
-- type (a path segment the sender chose); its id, times, source, status,
-- cause, credential and sizes stay.
--
-- A body is stored once for every request that sent it (rejected_bodies),
-- so erasing it erases it for each of them, and each gets a record. A body
-- sent again after its erasure is kept in its own row (rejected_requests.body),
-- as bodies were before rejected_bodies.
--
-- As with events, a row may be blanked only by the transaction that records
-- its expunge, only to the blank values; the records can be neither changed
-- nor removed. The application's role may read the records and do none of
-- this: the command runs as the owner.

-- +goose Up
CREATE TABLE expunged_rejections (
    rejected_id bigint      PRIMARY KEY REFERENCES rejected_requests (id),
    expunged_at timestamptz NOT NULL DEFAULT now(),
    reason      text        NOT NULL CHECK (reason <> ''),
    -- The SHA-256 of the body erased.
    body_sha256 bytea       NOT NULL,
    -- The transaction that recorded it, the only one that may blank the rows.
    xid         xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX expunged_rejections_body_idx ON expunged_rejections (body_sha256);
CREATE INDEX rejected_requests_body_idx ON rejected_requests (body_sha256) WHERE body_sha256 IS NOT NULL;

CREATE TRIGGER expunged_rejections_append_only BEFORE UPDATE OR DELETE ON expunged_rejections
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER expunged_rejections_no_truncate BEFORE TRUNCATE ON expunged_rejections
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();

REVOKE ALL ON expunged_rejections FROM PUBLIC;
GRANT SELECT ON expunged_rejections TO casetrail_app;

-- +goose StatementBegin
CREATE FUNCTION casetrail_guard_rejected_requests() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasable CONSTANT text[] := ARRAY['body', 'detail', 'event_type'];
BEGIN
    IF TG_OP = 'UPDATE'
       AND EXISTS (SELECT FROM expunged_rejections x WHERE x.rejected_id = OLD.id AND x.xid = pg_current_xact_id())
       AND NEW.body = ''::bytea AND NEW.detail = '' AND NEW.event_type = ''
       AND to_jsonb(NEW) - erasable = to_jsonb(OLD) - erasable
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'casetrail: % on % is refused: the audit store is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION casetrail_guard_rejected_bodies() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND EXISTS (SELECT FROM expunged_rejections x WHERE x.body_sha256 = OLD.sha256 AND x.xid = pg_current_xact_id())
       AND NEW.body = ''::bytea AND NEW.sha256 = OLD.sha256
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'casetrail: % on % is refused: the audit store is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

DROP TRIGGER rejected_requests_append_only ON rejected_requests;
CREATE TRIGGER rejected_requests_append_only BEFORE UPDATE OR DELETE ON rejected_requests
    FOR EACH ROW EXECUTE FUNCTION casetrail_guard_rejected_requests();
DROP TRIGGER rejected_bodies_append_only ON rejected_bodies;
CREATE TRIGGER rejected_bodies_append_only BEFORE UPDATE OR DELETE ON rejected_bodies
    FOR EACH ROW EXECUTE FUNCTION casetrail_guard_rejected_bodies();

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM expunged_rejections) THEN
        RAISE EXCEPTION 'casetrail: rejected requests were expunged; their records say what was erased and why, so this migration cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
DROP TRIGGER rejected_bodies_append_only ON rejected_bodies;
CREATE TRIGGER rejected_bodies_append_only BEFORE UPDATE OR DELETE ON rejected_bodies
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
DROP TRIGGER rejected_requests_append_only ON rejected_requests;
CREATE TRIGGER rejected_requests_append_only BEFORE UPDATE OR DELETE ON rejected_requests
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
DROP FUNCTION casetrail_guard_rejected_bodies();
DROP FUNCTION casetrail_guard_rejected_requests();
DROP INDEX rejected_requests_body_idx;
DROP TABLE expunged_rejections;
