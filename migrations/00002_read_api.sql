-- The read side: a commit-safe order for the event feed, and the access log
-- of auditor requests.

-- +goose Up
-- The transaction id of the insert. Every row with a transaction id below
-- the oldest still running one is committed (or gone), so a feed ordered by
-- (commit_xid, id) and cut at that horizon never sees a row appear behind a
-- reader's cursor. Ids alone are not commit-ordered.
ALTER TABLE events ADD COLUMN commit_xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_feed_idx ON events (commit_xid, id);

-- The feed's horizon: the oldest transaction still in progress that may
-- belong to this database (or the next transaction id when none is). Rows
-- of older transactions are all committed or gone. In-progress transactions
-- known to belong to other databases of the cluster are skipped, so that
-- their work does not hold this database's feed back; an unidentified one
-- counts, which errs on the side of waiting. It runs with the owner's
-- rights to see other sessions' transaction ids.
-- +goose StatementBegin
CREATE FUNCTION casetrail_feed_horizon() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
         foreign_xids AS (
             SELECT backend_xid::text::bigint AS xid
             FROM pg_stat_activity
             WHERE datname IS DISTINCT FROM current_database() AND backend_xid IS NOT NULL
         )
    SELECT least(
        pg_snapshot_xmax(s)::text::bigint,
        (SELECT min(x::text::bigint)
         FROM pg_snapshot_xip(s) AS x
         WHERE x::text::bigint % 4294967296 NOT IN (SELECT xid FROM foreign_xids)))
    FROM snap
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION casetrail_feed_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casetrail_feed_horizon() TO casetrail_app;

CREATE TABLE access_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    key_name   text        NOT NULL,
    role       text        NOT NULL,
    method     text        NOT NULL,
    route      text        NOT NULL,
    path       text        NOT NULL,
    params     jsonb       NOT NULL,
    status     integer     NOT NULL,
    event_ids  bigint[]    NOT NULL
);
CREATE INDEX access_log_key_idx ON access_log (key_name, id);

CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION casetrail_forbid_change();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION casetrail_forbid_change();

REVOKE ALL ON access_log FROM PUBLIC;
GRANT SELECT, INSERT ON access_log TO casetrail_app;

-- +goose Down
DROP TABLE access_log;
DROP FUNCTION casetrail_feed_horizon();
DROP INDEX events_feed_idx;
ALTER TABLE events DROP COLUMN commit_xid;
