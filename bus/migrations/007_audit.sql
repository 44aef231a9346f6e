-- Indexes behind the audit filters (API.md §11, GET /api/audit/events). Every page is ordered by
-- global_position, so each index ends with it and a filtered page is read in order without a sort.
-- (event_type, global_position) exists since 001.

-- stream=<id> and stream=<prefix>*: text_pattern_ops serves a left-anchored LIKE under any collation.
CREATE INDEX events_stream_prefix_idx ON events (stream_id text_pattern_ops, global_position);
CREATE INDEX events_actor_idx ON events ((metadata->>'actor'), global_position);
CREATE INDEX events_recorded_idx ON events (recorded_at, global_position);
