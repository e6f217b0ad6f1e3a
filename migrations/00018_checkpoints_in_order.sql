-- A checkpoint is stored after every one before it: its id is the next of
-- the table's own sequence and its time the time it is stored; its size and
-- root columns are those its signed note names, and its size is no larger
-- than the log's. The newest checkpoint is read by id, the next signing
-- waits on its time, and a smaller tree than its size is not signed, so
-- whoever can insert (the application's role too, with OVERRIDING SYSTEM
-- VALUE, or naming a time or a size) could otherwise copy a checkpoint in
-- with a far id, a far time or a far size and stop new checkpoints from
-- being signed, silently, or slip one in among the older ones.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION casetrail_checkpoint_in_order() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM (SELECT last_value FROM log_checkpoints_id_seq)
       OR NEW.id <= (SELECT coalesce(max(id), 0) FROM log_checkpoints) THEN
        RAISE EXCEPTION 'casetrail: a checkpoint takes the next id of its sequence, after every stored one (not %)', NEW.id
            USING ERRCODE = 'P0001';
    END IF;
    IF split_part(NEW.note, E'\n', 2) IS DISTINCT FROM NEW.size::text
       OR NEW.root IS DISTINCT FROM decode(split_part(NEW.note, E'\n', 3), 'base64') THEN
        RAISE EXCEPTION 'casetrail: a checkpoint''s size and root are those its note names'
            USING ERRCODE = 'P0001';
    END IF;
    IF NEW.size > (SELECT coalesce(max(size), 0) FROM log_state) THEN
        RAISE EXCEPTION 'casetrail: a checkpoint of % leaves, past the log''s', NEW.size
            USING ERRCODE = 'P0001';
    END IF;
    NEW.at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER log_checkpoints_in_order BEFORE INSERT ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION casetrail_checkpoint_in_order();

-- +goose Down
DROP TRIGGER log_checkpoints_in_order ON log_checkpoints;
DROP FUNCTION casetrail_checkpoint_in_order();
