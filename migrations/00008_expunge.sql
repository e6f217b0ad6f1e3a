-- Erasure (retention, right to erasure): an event's content can be expunged
-- while its leaf still verifies. The leaf commits to the body and to the
-- event's detail (credential, summary, actor, changes, reply) only through
-- hashes salted with the event's own salt, so the record of an expunge keeps
-- those two hashes and verification reads them instead of recomputing them
-- from the erased row.
--
-- Each record is signed with the log's key (an Ed25519 signed note over what
-- it says, the credential the event was sent with included, since the
-- detail hash no longer checks it): a record forged by whoever can write to
-- the database does not verify.
--
-- The store stays append-only for everything else. A row's content may be
-- blanked only by the transaction that records its expunge, only to the
-- blank values, and nothing else of the row may change; the record itself
-- can be neither changed nor removed. The application's role may read the
-- records and do none of this: `casetrail expunge` runs as the owner.

-- +goose Up
CREATE TABLE expunged_events (
    event_id    bigint      PRIMARY KEY,
    expunged_at timestamptz NOT NULL DEFAULT now(),
    reason      text        NOT NULL CHECK (reason <> ''),
    -- What the leaf commits to: SHA-256(salt || body), and for a version 3
    -- leaf SHA-256(salt || detail) (null for an earlier leaf).
    body_hash   bytea       NOT NULL,
    detail_hash bytea,
    -- Attachments removed with it: those no other event still refers to.
    blobs       bytea[]     NOT NULL DEFAULT '{}',
    -- The signed note over all of the above and the event's credential.
    note        text        NOT NULL,
    -- The transaction that recorded it, the only one that may blank the row.
    xid         xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX expunged_events_xid_idx ON expunged_events (xid);

CREATE TRIGGER expunged_events_append_only BEFORE UPDATE OR DELETE ON expunged_events
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER expunged_events_no_truncate BEFORE TRUNCATE ON expunged_events
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();

REVOKE ALL ON expunged_events FROM PUBLIC;
GRANT SELECT ON expunged_events TO casetrail_app;

-- +goose StatementBegin
CREATE FUNCTION casetrail_guard_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasable CONSTANT text[] := ARRAY['body', 'body_sha256', 'doc', 'doc_lossy', 'summary', 'actor', 'changes', 'reply'];
BEGIN
    IF TG_OP = 'UPDATE'
       AND EXISTS (SELECT FROM expunged_events x WHERE x.event_id = OLD.id AND x.xid = pg_current_xact_id())
       AND NEW.body = ''::bytea AND NEW.body_sha256 = ''::bytea AND NEW.doc IS NULL AND NOT NEW.doc_lossy
       AND NEW.summary = '' AND NEW.actor IS NULL AND NEW.changes IS NULL AND NEW.reply IS NULL
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
CREATE FUNCTION casetrail_guard_blobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND EXISTS (SELECT FROM expunged_events x WHERE x.xid = pg_current_xact_id() AND OLD.sha256 = ANY (x.blobs))
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'casetrail: % on % is refused: the audit store is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION casetrail_guard_events();
DROP TRIGGER blobs_append_only ON blobs;
CREATE TRIGGER blobs_append_only BEFORE UPDATE OR DELETE ON blobs
    FOR EACH ROW EXECUTE FUNCTION casetrail_guard_blobs();

-- +goose Down
-- The records hold the only copies of the hashes the expunged events' leaves
-- commit to: without them those events no longer verify.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM expunged_events) THEN
        RAISE EXCEPTION 'casetrail: events were expunged; their records are needed to verify the log, so this migration cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
DROP TRIGGER blobs_append_only ON blobs;
CREATE TRIGGER blobs_append_only BEFORE UPDATE OR DELETE ON blobs
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
DROP FUNCTION casetrail_guard_blobs();
DROP FUNCTION casetrail_guard_events();
DROP TABLE expunged_events;
