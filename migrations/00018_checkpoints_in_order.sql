-- A checkpoint is stored after every one before it: its id is the next of
-- the table's own sequence and its time the time it is stored. The newest
-- checkpoint is read by id, and the next signing waits on its time, so
-- whoever can insert (the application's role too, with OVERRIDING SYSTEM
-- VALUE, or naming a time) could otherwise copy a checkpoint in with a far
-- id or a far time and stop new checkpoints from being signed, or slip one
-- in among the older ones.

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
