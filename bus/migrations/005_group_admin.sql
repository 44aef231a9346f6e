-- Read table of the group admin domain: each group's own overrides of the global config.
CREATE TABLE group_configs (
    group_id   text PRIMARY KEY,
    overrides  jsonb NOT NULL,
    version    bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
