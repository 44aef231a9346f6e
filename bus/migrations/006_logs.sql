-- Structured log lines stored by the log sink (services/logs/sink.py) from `logs.<service>.<level>`.
-- Not events: lines are lossy, trimmed by age and count, and never replayed.
CREATE TABLE logs (
    id          bigserial PRIMARY KEY,
    timestamp   timestamptz NOT NULL,
    level       text NOT NULL,
    service     text NOT NULL,
    instance_id text NOT NULL DEFAULT '',
    logger      text NOT NULL DEFAULT '',
    message     text NOT NULL,
    request_id  text,
    extra       jsonb NOT NULL DEFAULT '{}'
);
-- Pages are ordered by (timestamp, id); retention by age scans the time index.
CREATE INDEX logs_timestamp_idx ON logs (timestamp, id);
CREATE INDEX logs_level_timestamp_idx ON logs (level, timestamp);
CREATE INDEX logs_service_timestamp_idx ON logs (service, timestamp);
-- "Which lines belong to this failed request?" (a 500 names its request id).
CREATE INDEX logs_request_id_idx ON logs (request_id) WHERE request_id IS NOT NULL;
