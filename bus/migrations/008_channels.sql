-- Read table of the channels domain.
CREATE TABLE channels (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    adapter_type   text NOT NULL,
    base_url       text NOT NULL,
    api_key        text,
    api_keys       jsonb NOT NULL DEFAULT '[]',
    models         text[] NOT NULL DEFAULT '{}',
    priority       int NOT NULL,
    weight         int NOT NULL,
    enabled        boolean NOT NULL,
    timeout        jsonb NOT NULL,
    retry          jsonb NOT NULL,
    advanced       jsonb NOT NULL,
    custom_headers jsonb NOT NULL,
    proxy          text,
    status         text NOT NULL DEFAULT 'idle',
    last_error     text,
    tested_at      timestamptz,
    cooldown_until timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        bigint NOT NULL
);
CREATE INDEX channels_priority_idx ON channels (priority, id);
