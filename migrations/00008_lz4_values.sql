-- Large values (bodies, their indexed copies, attachments, rejected bodies)
-- are compressed with lz4 instead of PostgreSQL's default pglz. A row over
-- about 2 KB is compressed as it is stored, inside the write path's one
-- transaction at a time; pglz took about a tenth of that transaction's time
-- and lz4 compresses several times faster. On the bench's mix the events
-- also took less room: 2,736 against 2,994 bytes on disk per event, TOAST
-- and indexes included (docs/benchmarks.md).
--
-- Existing values stay as they are (each value records its own method).
-- Setting the partitioned table does not reach its existing partitions, so
-- each is set too (by a function kept for the way down); partitions made
-- later take the parent's setting. A PostgreSQL built without lz4 keeps
-- pglz, with a notice.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION casetrail_set_compression(method text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT 'events'::regclass UNION ALL
             SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'events'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN body SET COMPRESSION %s, ALTER COLUMN doc SET COMPRESSION %2$s, '
                       'ALTER COLUMN actor SET COMPRESSION %2$s, ALTER COLUMN changes SET COMPRESSION %2$s, '
                       'ALTER COLUMN reply SET COMPRESSION %2$s', t, method);
    END LOOP;
    EXECUTE format('ALTER TABLE blobs ALTER COLUMN content SET COMPRESSION %s', method);
    EXECUTE format('ALTER TABLE rejected_requests ALTER COLUMN body SET COMPRESSION %s', method);
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION casetrail_set_compression(text) FROM PUBLIC;

-- +goose StatementBegin
DO $$
BEGIN
    PERFORM casetrail_set_compression('lz4');
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'casetrail: this PostgreSQL has no lz4; large values stay compressed with pglz';
END
$$;
-- +goose StatementEnd

-- +goose Down
SELECT casetrail_set_compression('default');
DROP FUNCTION casetrail_set_compression(text);
