-- The abandonment report counts a work item closed once however often its
-- close is delivered: closes of the same work item id at the same time are
-- one handled work item (a platform may send a close again under another
-- webhook-id, or with only a delivery time stamp changed, which gives it
-- another idempotency key). The report reads the inbound closes in order of
-- closing time and work item id and compares each with the one before, so
-- the index of inbound closes is keyed by both: the read can stay
-- index-only and take the closes in the index's order, merged across the
-- partitions, rather than sort them. Work item ids are at most 200 bytes
-- (longer ones are not stored).

-- The new index is built before the old one is dropped: the build holds
-- off writes to events but not reads, and only the drop and the rename,
-- which take a moment, hold off both.

-- +goose Up
CREATE INDEX events_handled_by_item_idx ON events (occurred_at, work_item_id)
    INCLUDE (received_at)
    WHERE kind = 'service-hooks' AND type = 'workitem-closed' AND is_outbound IS FALSE;
DROP INDEX events_handled_idx;
ALTER INDEX events_handled_by_item_idx RENAME TO events_handled_idx;

-- +goose Down
DROP INDEX events_handled_idx;
CREATE INDEX events_handled_idx ON events (occurred_at)
    INCLUDE (received_at)
    WHERE kind = 'service-hooks' AND type = 'workitem-closed' AND is_outbound IS FALSE;
