-- name: LogLock :one
-- Only one sequencer works at a time, across every server.
SELECT pg_try_advisory_xact_lock(7310002)::boolean AS locked;

-- name: LogStateLatest :one
SELECT size, root, range_hashes, last_xid, last_event, at
FROM log_state
ORDER BY size DESC
LIMIT 1;

-- name: LogRoundSettings :exec
-- The round's transaction runs with settings of its own, both ended by its
-- commit.
--
-- No sort: LogPending must walk the events in index order and stop at its
-- limit. When many waiting events share one transaction id (a bulk load),
-- the planner expects few past the position and would read and sort them
-- all, in every round.
--
-- No wait for the flush at commit. A round is derived from events that
-- were durably committed before it read them, in the order (commit_xid,
-- id), which no later commit can enter: a round lost in a crash is redone
-- with the same leaves, nodes and roots. Ingest commits then do not queue
-- behind the flush of a round's thousands of rows (docs/benchmarks.md),
-- and a signed checkpoint, committed synchronously, flushes every round
-- before it: no stored checkpoint can name a tree that a crash took back.
SELECT set_config('enable_sort', 'off', true), set_config('synchronous_commit', 'off', true);

-- name: LogPending :many
-- The next committed events in commit-safe order after the sequencer's
-- position, with what their leaves commit to. Run after LogRoundSettings.
--
-- The limit is taken before the horizon's cut, which gives the same rows:
-- the events before the horizon come first in this order. With the cut
-- inside, its value unknown when planning, the planner read every event
-- past the position, hashed each body and sorted them all for the first
-- few thousand (about 40 ms for 2,500 of 10,000 waiting, against 9 ms).
SELECT p.id, p.commit_xid, p.source, p.kind, p.type, p.occurred_at, p.received_at, p.case_id, p.phone,
       p.customer_id, p.conversation_id, p.agent_id, p.work_item_id, p.queue, p.time_in_queue_ms, p.is_outbound,
       p.credential, p.summary, p.actor, p.changes, p.reply, p.body_salt, sha256(p.body_salt || p.body) AS body_hash,
       p.content_type, p.idempotency_key, p.body_sha256, p.doc_lossy,
       sha256(p.body_salt || convert_to(p.doc::text, 'UTF8')) AS doc_hash
FROM (
    SELECT e.id, e.commit_xid, e.source, e.kind, e.type, e.occurred_at, e.received_at, e.case_id, e.phone,
           e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue, e.time_in_queue_ms, e.is_outbound,
           e.credential, e.summary, e.actor, e.changes, e.reply, e.body_salt, e.body,
           e.content_type, e.idempotency_key, e.body_sha256, e.doc_lossy, e.doc
    FROM events e
    WHERE (e.commit_xid, e.id) > (@after_xid::bigint, @after_event::bigint)
    ORDER BY e.commit_xid, e.id
    LIMIT @row_limit::integer
) p
WHERE p.commit_xid < (SELECT casetrail_feed_horizon())
ORDER BY p.commit_xid, p.id;

-- name: LogLoggedAmong :many
-- Those of the given events whose id the log holds already. Run in a round,
-- after LogRoundSettings: in event id order, which the unique index on it
-- gives without a sort, one probe per id.
SELECT l.event_id
FROM log_leaves l
WHERE l.event_id = ANY (@ids::bigint[])
ORDER BY l.event_id;

-- name: LogLeavesInsert :copyfrom
-- By COPY: a round stores thousands of leaves, and COPY costs each row far
-- less than an INSERT (subscripting arrays of byte strings walks them).
INSERT INTO log_leaves (idx, event_id, leaf_hash, body_hash)
VALUES (@idx, @event_id, @leaf_hash, @body_hash);

-- name: LogNodesInsert :copyfrom
INSERT INTO log_nodes (node_key, hash)
VALUES (@node_key, @hash);

-- name: LogStateInsert :exec
INSERT INTO log_state (size, root, range_hashes, last_xid, last_event)
VALUES (@size::bigint, @root::bytea, @range_hashes::bytea[], @last_xid::bigint, @last_event::bigint);

-- name: LogLeafHashes :many
SELECT idx, leaf_hash
FROM log_leaves
WHERE idx = ANY (@idx::bigint[])
ORDER BY idx;

-- name: LogNodeHashes :many
SELECT node_key, hash
FROM log_nodes
WHERE node_key = ANY (@node_key::bigint[])
ORDER BY node_key;

-- name: LogLeafByEvent :one
SELECT idx, leaf_hash
FROM log_leaves
WHERE event_id = @event_id::bigint;

-- name: LogCheckpointLock :exec
-- Signers store checkpoints one at a time, across every server.
SELECT pg_advisory_xact_lock(7310003);

-- name: LogCheckpointInsert :exec
INSERT INTO log_checkpoints (size, root, note)
VALUES (@size::bigint, @root::bytea, @note::text);

-- name: LogCheckpointLatest :one
SELECT id, size, root, note, at
FROM log_checkpoints
ORDER BY id DESC
LIMIT 1;

-- name: LogCheckpointList :many
SELECT id, size, root, note, at
FROM log_checkpoints
WHERE id > @after_id::bigint
ORDER BY id
LIMIT @row_limit::integer;

-- name: LogVerifyRows :many
-- Every leaf with the event it should commit to, in log order (the event is
-- missing when the row was removed). An expunged event's hashes come from the
-- record of its expunge, with whether its row is as blank as one leaves it.
-- bad_attachment is the first attachment its document refers to that is not
-- stored as it was: casetrail_bad_attachment (migration 00014), the check
-- expunge makes.
-- unreferenced is the first reference of the shape ingest writes
-- ({"sha256": hex, "size": n}) to an attachment stored with that size for
-- which event_attachments holds no row of the event's (looked up by the
-- table's key): an expunge of the other events that refer to it would
-- remove it.
-- The events an earlier server committed while 00016 ran have no references
-- until the next expunge adds them (casetrail_attachments_catch_up): while
-- that window is open, theirs are not looked for.
SELECT l.idx, l.event_id, l.leaf_hash, e.id AS row_id, e.source, e.kind, e.type, e.occurred_at,
       e.received_at, e.case_id, e.phone, e.customer_id, e.conversation_id, e.agent_id, e.work_item_id,
       e.queue, e.time_in_queue_ms, e.is_outbound, e.credential, e.summary, e.actor, e.changes, e.reply,
       e.body_salt, COALESCE(x.body_hash, sha256(e.body_salt || e.body)) AS body_hash,
       e.content_type, e.idempotency_key, e.body_sha256, e.doc_lossy,
       sha256(e.body_salt || convert_to(e.doc::text, 'UTF8')) AS doc_hash,
       coalesce(sha256(e.body) = e.body_sha256, false)::boolean AS body_sha256_matches,
       x.expunged_at, x.reason AS expunge_reason, x.detail_hash AS expunged_detail_hash,
       x.blobs AS expunged_blobs, x.note AS expunge_note,
       (e.body = ''::bytea AND e.body_sha256 = ''::bytea AND e.doc IS NULL AND NOT e.doc_lossy AND e.summary = ''
        AND e.actor IS NULL AND e.changes IS NULL AND e.reply IS NULL) AS blank,
       a.bad AS bad_attachment, (ab.sha256 IS NOT NULL)::boolean AS bad_attachment_stored,
       u.unreferenced
FROM log_leaves l
LEFT JOIN events e ON e.id = l.event_id
LEFT JOIN expunged_events x ON x.event_id = l.event_id
LEFT JOIN LATERAL (SELECT casetrail_bad_attachment(e.doc, e.body) AS bad) a ON true
-- The references ingest writes are objects of exactly {"sha256": hex,
-- "size": n}; one to an attachment stored with that size must have its row.
-- (The body cannot tell a reference from the sender's own hash here: a body
-- in UTF-16, or with the hash's digits escaped, does not hold it literally,
-- and a platform may send a checksum beside the content it moves out.)
LEFT JOIN LATERAL (
    SELECT (array_agg(o.sha256 ORDER BY o.n))[1]::bytea AS unreferenced
    FROM (SELECT decode(q.v ->> 'sha256', 'hex') AS sha256, q.v -> 'size' AS size, q.n
          FROM jsonb_path_query(e.doc, 'strict $.** ? (@.type() == "object" && exists(@.sha256) && @.size.type() == "number")')
               WITH ORDINALITY AS q(v, n)
          WHERE (SELECT count(*) FROM jsonb_object_keys(q.v)) = 2
            AND jsonb_typeof(q.v -> 'sha256') = 'string' AND (q.v ->> 'sha256') ~ '^[0-9a-f]{64}$') o
    WHERE EXISTS (SELECT FROM blobs b WHERE b.sha256 = o.sha256 AND b.size::numeric = o.size::numeric)
      AND NOT EXISTS (SELECT FROM event_attachments ea WHERE ea.sha256 = o.sha256 AND ea.event_id = e.id)
      -- The window, read once per statement.
      AND (e.commit_xid < coalesce((SELECT w.horizon FROM event_attachments_backfill w LIMIT 1), 9223372036854775807)
           OR e.received_at >= (SELECT w.migrated_at + interval '1 hour' FROM event_attachments_backfill w LIMIT 1))
) u ON true
LEFT JOIN blobs ab ON ab.sha256 = a.bad
WHERE l.idx >= @from_idx::bigint
ORDER BY l.idx
LIMIT @row_limit::integer;

-- name: LogUnsequenced :many
-- Rows the log does not hold although the sequencer has passed their place
-- in commit order: inserted behind its back.
SELECT e.id
FROM events e
LEFT JOIN log_leaves l ON l.event_id = e.id
WHERE l.idx IS NULL
  AND (e.commit_xid, e.id) < (@last_xid::bigint, @last_event::bigint)
ORDER BY e.id
LIMIT 100;

-- name: LogAheadOfEveryTransaction :many
-- Rows whose commit_xid no transaction has had yet: a committed row's is
-- that of the transaction that wrote it, below the snapshot's xmax. Such a
-- row was written with a forged value, which keeps it out of the
-- sequencer's reach while readers see it.
SELECT id
FROM events
WHERE commit_xid >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint
ORDER BY commit_xid, id
LIMIT 100;

-- name: LogEventCommitXid :one
-- Where an event stands in commit order.
SELECT commit_xid
FROM events
WHERE id = @id::bigint
LIMIT 1;

-- name: LogUnloggedBetween :one
-- The first event in commit order strictly between two positions that no
-- leaf holds: where a leaf missing from the log should be.
SELECT e.id
FROM events e
LEFT JOIN log_leaves l ON l.event_id = e.id
WHERE l.idx IS NULL
  AND (e.commit_xid, e.id) > (@after_xid::bigint, @after_event::bigint)
  AND (e.commit_xid, e.id) < (@before_xid::bigint, @before_event::bigint)
ORDER BY e.commit_xid, e.id
LIMIT 1;

-- name: LogNodesOutsideTree :many
-- Subtree hashes stored for leaves the tree of the given size does not
-- hold yet (or under a key no subtree has): the sequencer cannot store its
-- own there when the log gets that far.
SELECT node_key
FROM log_nodes
WHERE node_key < 0
   OR ((node_key & 72057594037927935) + 1)::numeric * power(2::numeric, (node_key >> 56)::numeric) > @size::bigint
ORDER BY node_key
LIMIT 10;

-- name: LogLeavesBelowZero :many
-- Leaves at a negative index: no tree holds them, and verification, which
-- reads the leaves from index 0, would not meet them, while readers are
-- shown the event with that log index.
SELECT idx, event_id
FROM log_leaves
WHERE idx < 0
ORDER BY idx
LIMIT 100;

-- name: LogDuplicateEventIDs :many
SELECT id
FROM events
GROUP BY id
HAVING count(*) > 1
ORDER BY id
LIMIT 100;

-- name: LogBundleRows :many
-- What an offline auditor needs to recompute events' leaves.
SELECT e.id, e.source, e.kind, e.type, e.occurred_at, e.received_at, e.case_id, e.phone,
       e.customer_id, e.conversation_id, e.agent_id, e.work_item_id, e.queue, e.time_in_queue_ms,
       e.is_outbound, e.credential, e.summary, e.actor, e.changes, e.reply, e.body_salt, e.body, l.idx,
       COALESCE(x.body_hash, sha256(e.body_salt || e.body)) AS body_hash,
       e.content_type, e.idempotency_key, e.body_sha256, e.doc_lossy,
       sha256(e.body_salt || convert_to(e.doc::text, 'UTF8')) AS doc_hash,
       x.expunged_at, x.reason AS expunge_reason, x.detail_hash AS expunged_detail_hash,
       x.blobs AS expunged_blobs, x.note AS expunge_note
FROM events e
JOIN log_leaves l ON l.event_id = e.id
LEFT JOIN expunged_events x ON x.event_id = e.id
WHERE e.id = ANY (@ids::bigint[])
ORDER BY l.idx;

-- name: LogIndexesOf :many
-- The log positions of those of the given events that the log holds.
SELECT l.event_id, l.idx
FROM log_leaves l
WHERE l.event_id = ANY (@ids::bigint[])
ORDER BY l.idx;

-- name: EventsReceivedBetween :many
-- Every event received in [from, to), whether the log holds it yet or not.
SELECT e.id
FROM events e
WHERE e.received_at >= @from_at::timestamptz AND e.received_at < @to_at::timestamptz
ORDER BY e.id;

-- name: LogUnsequencedCount :one
-- Committed events past the sequencer's position, but for rows whose id the
-- log holds already (a second row under one id, which the sequencer passes
-- over: SequenceRound) and rows whose commit_xid no transaction has had yet
-- (forged: LogAheadOfEveryTransaction), which no round can take until the
-- transaction ids reach it, and for which a drain would wait in vain. Every
-- committed row's commit_xid is below the snapshot's xmax.
SELECT count(*)::bigint AS pending
FROM events e
WHERE (e.commit_xid, e.id) > (@last_xid::bigint, @last_event::bigint)
  AND e.commit_xid < pg_snapshot_xmax(pg_current_snapshot())::text::bigint
  AND NOT EXISTS (SELECT FROM log_leaves l WHERE l.event_id = e.id);

-- name: LogAlteredBlobs :many
-- Attachments whose content no longer has the SHA-256 or the size they are
-- stored and referred to by.
SELECT sha256
FROM blobs
WHERE sha256(content) <> sha256 OR octet_length(content) <> size
ORDER BY sha256
LIMIT 10;

-- name: LogAttachmentRefsUnfounded :many
-- Rows of event_attachments that no stored document accounts for: the event
-- is not expunged, and its document holds no reference to the attachment by
-- the rule the backfill of migration 00016 took references by
-- (casetrail_document_attachments: a hash under a "sha256" key that names a
-- stored attachment, or that the body does not hold), or there is no such
-- event. Such a row keeps an attachment from
-- being removed when the events that do refer to it are expunged. An
-- expunged event's rows are not checked: its document is gone, and its
-- record lists only the attachments removed with it, not those it shared.
SELECT a.event_id, a.sha256
FROM event_attachments a
WHERE NOT EXISTS (SELECT FROM expunged_events x WHERE x.event_id = a.event_id)
  AND NOT EXISTS (SELECT FROM events e
                  WHERE e.id = a.event_id
                    AND a.sha256 IN (SELECT casetrail_document_attachments(e.doc, e.body)))
ORDER BY a.event_id, a.sha256
LIMIT 10;

-- name: LogErasedBlobsBack :many
-- Attachments an expunge removed that are stored again although no event's
-- document refers to them (an event stored after the expunge with the same
-- attachment stores it again, and refers to it), with the first expunged
-- event whose record lists each. References are found in the documents,
-- not in event_attachments as the expunge finds them: an attachment is
-- stored again only with an event whose document names it
-- (casetrail_ingest), and a document is held to its leaf, which a row of
-- event_attachments is not.
SELECT b.sha256, min(x.event_id)::bigint AS event_id
FROM expunged_events x
CROSS JOIN LATERAL unnest(x.blobs) AS u(sha256)
JOIN blobs b ON b.sha256 = u.sha256
WHERE NOT EXISTS (SELECT FROM events e
                  WHERE e.doc IS NOT NULL AND strpos(e.doc::text, encode(b.sha256, 'hex')) > 0)
GROUP BY b.sha256
ORDER BY b.sha256
LIMIT 10;

-- name: LogCheckpointsMentioning :many
-- The stored checkpoints whose note holds the text (the start of a key's
-- signature line: its name and the first characters of its key hash),
-- oldest first; the caller verifies them.
SELECT note FROM log_checkpoints WHERE strpos(note, @text::text) > 0 ORDER BY id;
