-- Read tables of the chat domain: conversations, their messages, and per channel/model call stats.
CREATE TABLE conversations (
    id            text PRIMARY KEY,
    user_id       text,
    group_id      text,
    platform      text NOT NULL,
    creator       text NOT NULL DEFAULT '',
    title         text NOT NULL DEFAULT '',
    message_count int NOT NULL DEFAULT 0,
    last_message  text,
    context_from  int NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX conversations_user_idx ON conversations (user_id, updated_at);
CREATE INDEX conversations_group_idx ON conversations (group_id, updated_at);

CREATE TABLE messages (
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             int NOT NULL,
    message_id      text NOT NULL,
    role            text NOT NULL,
    content         text NOT NULL,
    tool_calls      jsonb NOT NULL DEFAULT '[]',
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE channel_stats (
    channel_id        text NOT NULL,
    model             text NOT NULL,
    calls             bigint NOT NULL DEFAULT 0,
    success           bigint NOT NULL DEFAULT 0,
    failed            bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    latency_ms_sum    double precision NOT NULL DEFAULT 0,
    ttft_ms_sum       double precision NOT NULL DEFAULT 0,
    ttft_count        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, model)
);
