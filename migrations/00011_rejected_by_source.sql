-- Rejected requests are listed over the API (GET /v1/rejected), all of
-- them or one source's, in id order. Ids of rejected requests and of the
-- access log are taken in commit order: each insert holds an advisory lock
-- from taking its id to its commit (queries/access_log.sql,
-- queries/rejected.sql), so that a reader paging by id never passes a row
-- that commits later.

-- +goose Up
CREATE INDEX rejected_requests_source_idx ON rejected_requests (source, id);

-- +goose Down
DROP INDEX rejected_requests_source_idx;
