-- Read tables of the tools domain: the admin's settings, and the tool log (one row per ToolCalled).
CREATE TABLE tool_settings (
    name      text PRIMARY KEY,
    enabled   boolean,
    dangerous boolean
);

CREATE TABLE tool_categories (
    category text PRIMARY KEY,
    enabled  boolean NOT NULL
);

CREATE TABLE tool_logs (
    id              text PRIMARY KEY,
    position        bigint NOT NULL,
    tool_name       text NOT NULL,
    arguments       jsonb NOT NULL DEFAULT '{}',
    result          jsonb,
    success         boolean NOT NULL,
    error           text,
    duration_ms     double precision NOT NULL DEFAULT 0,
    source          text NOT NULL DEFAULT 'builtin',
    caller          text NOT NULL DEFAULT '',
    user_id         text,
    group_id        text,
    conversation_id text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX tool_logs_time_idx ON tool_logs (created_at DESC, position DESC);
CREATE INDEX tool_logs_tool_idx ON tool_logs (tool_name, created_at DESC);
