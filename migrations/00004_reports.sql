-- Indexes for the abandonment report: abandons by time, outbound calls by
-- number and time (callback matching), inbound work items closed by time.

-- +goose Up
CREATE INDEX events_abandoned_idx ON events (occurred_at)
    INCLUDE (phone, queue, time_in_queue_ms, received_at)
    WHERE kind = 'service-hooks' AND type = 'abandoned-conversation';
CREATE INDEX events_outbound_idx ON events (phone, occurred_at)
    INCLUDE (agent_id)
    WHERE kind = 'service-hooks' AND type = 'outbound-call';
CREATE INDEX events_handled_idx ON events (occurred_at)
    INCLUDE (received_at)
    WHERE kind = 'service-hooks' AND type = 'workitem-closed' AND is_outbound IS FALSE;

-- +goose Down
DROP INDEX events_handled_idx;
DROP INDEX events_outbound_idx;
DROP INDEX events_abandoned_idx;
