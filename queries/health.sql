-- name: ServerSetting :one
SELECT current_setting(@name::text)::text AS value;

-- name: DatabaseTakesWrites :one
-- False on a standby (after a failover that left the URL behind) and in a
-- database set read-only: every event sent would be answered 503.
SELECT (NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off')::boolean AS writable;

-- name: StoreIdentity :one
-- The database's name and its events table's object id: the same on a
-- streaming replica of the database; another database of the cluster has
-- another name, and one of another cluster, made otherwise, another object.
SELECT (current_database()::text || '/' || ('events'::regclass::oid)::text)::text AS identity;
