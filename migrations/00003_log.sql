-- The tamper-evident log: every stored event becomes a leaf of an
-- append-only RFC 6962 Merkle tree. Leaves are assigned by one sequencer
-- after commit; the tree's perfect subtrees are kept for proofs, the compact
-- range after every round for the next one, and signed checkpoints for
-- auditors.

-- +goose Up
-- A per-event salt: the leaf commits to SHA-256(salt || body), so a body can
-- later be expunged with every proof still valid, and no published hash lets
-- anyone guess PHI by hashing candidates.
ALTER TABLE events ADD COLUMN body_salt bytea NOT NULL
    DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

CREATE TABLE log_leaves (
    idx          bigint      PRIMARY KEY,
    event_id     bigint      NOT NULL UNIQUE,
    leaf_hash    bytea       NOT NULL,
    body_hash    bytea       NOT NULL,
    sequenced_at timestamptz NOT NULL DEFAULT now()
);

-- Perfect subtree hashes above the leaves, keyed level << 56 | index.
CREATE TABLE log_nodes (
    node_key bigint PRIMARY KEY,
    hash     bytea  NOT NULL
);

-- One row per sequencing round: the tree after it and where the sequencer
-- stopped in commit order.
CREATE TABLE log_state (
    size         bigint      PRIMARY KEY,
    root         bytea       NOT NULL,
    range_hashes bytea[]     NOT NULL,
    last_xid     bigint      NOT NULL,
    last_event   bigint      NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE log_checkpoints (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size bigint      NOT NULL,
    root bytea       NOT NULL,
    note text        NOT NULL,
    at   timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['log_leaves', 'log_nodes', 'log_state', 'log_checkpoints'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change()', t || '_no_truncate', t);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t);
        EXECUTE format('GRANT SELECT, INSERT ON %I TO casetrail_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The body salts dropped here are the only way to check a body against its
-- leaf: once the log holds a leaf, this cannot be undone.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM log_leaves) OR EXISTS (SELECT FROM log_checkpoints) THEN
        RAISE EXCEPTION 'casetrail: the log holds leaves or signed checkpoints; undoing this migration would drop the salts and hashes they commit to, so it cannot be undone';
    END IF;
END
$$;
-- +goose StatementEnd
DROP TABLE log_checkpoints;
DROP TABLE log_state;
DROP TABLE log_nodes;
DROP TABLE log_leaves;
ALTER TABLE events DROP COLUMN body_salt;
