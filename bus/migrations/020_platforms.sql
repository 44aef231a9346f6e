-- Platforms (API.md §9): bot connections; the access token is stored sealed.
CREATE TABLE platforms (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    name         text NOT NULL,
    display_name text NOT NULL,
    enabled      boolean NOT NULL,
    config       jsonb NOT NULL,
    self_id      text NOT NULL DEFAULT '',
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX platforms_self_id_idx ON platforms (self_id);

-- Counters the pipeline bumps per message: too hot for the event log, kept out of replay.
CREATE TABLE platform_stats (
    platform_id   text PRIMARY KEY,
    received      bigint NOT NULL DEFAULT 0,
    sent          bigint NOT NULL DEFAULT 0,
    errors        bigint NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_event_at timestamptz
);

-- Daily usage per user / group, counted once per inbound message (dedup id) across all workers.
CREATE TABLE pipeline_usage (
    day   date NOT NULL,
    key   text NOT NULL,
    count integer NOT NULL,
    PRIMARY KEY (day, key)
);

-- What the pipeline has done for one inbound message: counted (usage, stats) and sent, so a
-- redelivery neither counts twice nor replies twice.
CREATE TABLE pipeline_messages (
    dedup_id   text PRIMARY KEY,
    refused    boolean NOT NULL DEFAULT false,
    sent_parts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The preset a user switched a conversation to with `#切换预设 <id>`.
CREATE TABLE pipeline_presets (
    conversation_id text PRIMARY KEY,
    preset_id       text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
