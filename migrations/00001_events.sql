-- The append-only event store: events (partitioned by receipt month), the
-- idempotency keys that must be unique across partitions, content-addressed
-- attachment blobs, and rejected requests. The application connects as
-- casetrail_app, which may only INSERT and SELECT; triggers refuse UPDATE,
-- DELETE and TRUNCATE even to the owner.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    -- Roles are cluster-wide: another database of the same cluster may be
    -- creating it at this very moment.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'casetrail_app') THEN
        BEGIN
            CREATE ROLE casetrail_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- The migrating owner hands its sessions to the restricted role with SET ROLE.
    EXECUTE format('GRANT casetrail_app TO %I', current_user);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION casetrail_forbid_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'casetrail: % on % is refused: the audit store is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE SEQUENCE events_id_seq AS bigint;

CREATE TABLE events (
    id               bigint      NOT NULL DEFAULT nextval('events_id_seq'),
    received_at      timestamptz NOT NULL,
    occurred_at      timestamptz NOT NULL,
    source           text        NOT NULL,
    kind             text        NOT NULL,
    type             text        NOT NULL,
    credential       text        NOT NULL,
    idempotency_key  text        NOT NULL,
    case_id          text,
    phone            text,
    customer_id      text,
    conversation_id  text,
    agent_id         text,
    work_item_id     text,
    queue            text,
    time_in_queue_ms bigint,
    is_outbound      boolean,
    actor            jsonb,
    changes          jsonb,
    summary          text        NOT NULL DEFAULT '',
    content_type     text        NOT NULL DEFAULT '',
    body             bytea       NOT NULL,
    body_sha256      bytea       NOT NULL,
    doc              jsonb,
    doc_lossy        boolean     NOT NULL DEFAULT false,
    reply            jsonb,
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);

-- Catches any receipt time no monthly partition covers (a clock far off), so
-- that an event is never refused for want of a partition.
CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE INDEX events_case_idx ON events (case_id, occurred_at, id) WHERE case_id IS NOT NULL;
CREATE INDEX events_phone_idx ON events (phone, occurred_at, id) WHERE phone IS NOT NULL;
CREATE INDEX events_customer_idx ON events (customer_id, occurred_at, id) WHERE customer_id IS NOT NULL;
CREATE INDEX events_conversation_idx ON events (conversation_id, occurred_at, id) WHERE conversation_id IS NOT NULL;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events_default
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();

-- Idempotency keys are unique per source across all partitions, which a
-- unique index on the partitioned events table cannot be.
CREATE TABLE idempotency_keys (
    source      text        NOT NULL,
    key         text        NOT NULL,
    explicit    boolean     NOT NULL,
    body_sha256 bytea       NOT NULL,
    event_id    bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (source, key)
);

CREATE TABLE blobs (
    sha256     bytea       PRIMARY KEY,
    size       bigint      NOT NULL,
    content    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rejected_requests (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    source         text        NOT NULL,
    event_type     text        NOT NULL DEFAULT '',
    status         integer     NOT NULL,
    cause          text        NOT NULL,
    detail         text        NOT NULL DEFAULT '',
    credential     text        NOT NULL,
    content_type   text        NOT NULL DEFAULT '',
    body           bytea       NOT NULL,
    body_size      bigint      NOT NULL,
    body_truncated boolean     NOT NULL DEFAULT false
);
CREATE INDEX rejected_requests_received_idx ON rejected_requests (received_at, id);

CREATE TRIGGER idempotency_keys_append_only BEFORE UPDATE OR DELETE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER idempotency_keys_no_truncate BEFORE TRUNCATE ON idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER blobs_append_only BEFORE UPDATE OR DELETE ON blobs
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER blobs_no_truncate BEFORE TRUNCATE ON blobs
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER rejected_requests_append_only BEFORE UPDATE OR DELETE ON rejected_requests
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER rejected_requests_no_truncate BEFORE TRUNCATE ON rejected_requests
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();

-- Monthly partitions are made ahead of time by the server. The function runs
-- with the owner's rights so that the restricted role can call it without
-- being able to create tables itself.
-- +goose StatementBegin
CREATE FUNCTION casetrail_ensure_partitions(from_month date, months integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m       date;
    lo      timestamptz;
    hi      timestamptz;
    name    text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('casetrail_ensure_partitions'));
    FOR i IN 0 .. months - 1 LOOP
        m := (date_trunc('month', from_month) + make_interval(months => i))::date;
        name := format('events_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            lo := m::timestamp AT TIME ZONE 'UTC';
            hi := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
            EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change()',
                           name || '_no_truncate', name);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
-- +goose StatementEnd

SELECT casetrail_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 31, 4);

REVOKE ALL ON events, idempotency_keys, blobs, rejected_requests FROM PUBLIC;
GRANT SELECT, INSERT ON events, idempotency_keys, blobs, rejected_requests TO casetrail_app;
GRANT USAGE ON SEQUENCE events_id_seq TO casetrail_app;
REVOKE ALL ON FUNCTION casetrail_ensure_partitions(date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casetrail_ensure_partitions(date, integer) TO casetrail_app;
-- /readyz compares the applied version with the binary's.
GRANT SELECT ON goose_db_version TO casetrail_app;

-- +goose Down
-- An audit store is not emptied by a schema change: with anything stored,
-- this cannot be undone.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM events) OR EXISTS (SELECT FROM rejected_requests) THEN
        RAISE EXCEPTION 'casetrail: events or rejected requests are stored; undoing this migration would drop them, so it cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION casetrail_ensure_partitions(date, integer);
DROP TABLE rejected_requests;
DROP TABLE blobs;
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP SEQUENCE events_id_seq;
DROP FUNCTION casetrail_forbid_change();
-- The role is cluster-wide and may serve other databases; it is kept.
REVOKE SELECT ON goose_db_version FROM casetrail_app;
