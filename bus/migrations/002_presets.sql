-- Read table of the presets domain (projection of preset-* streams).
CREATE TABLE presets (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    category      text NOT NULL DEFAULT 'general',
    system_prompt text NOT NULL DEFAULT '',
    model         text NOT NULL DEFAULT '',
    model_params  jsonb NOT NULL DEFAULT '{}',
    persona       jsonb NOT NULL DEFAULT '{}',
    context       jsonb NOT NULL DEFAULT '{}',
    tools         jsonb NOT NULL DEFAULT '{}',
    type          text NOT NULL,
    is_default    boolean NOT NULL DEFAULT false,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint NOT NULL
);
CREATE INDEX presets_name_idx ON presets (lower(name));
CREATE INDEX presets_created_idx ON presets (created_at);
