-- Plugins (API.md §9, DESIGN.md "Plugins").
-- The uploaded archives by sha256: content-addressed bytes, like a blob store (not derived from
-- events: a PluginInstalled event names a digest that is here).
CREATE TABLE plugin_blobs (
    digest     text PRIMARY KEY,
    data       bytea NOT NULL,
    size       integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plugins (
    name         text PRIMARY KEY,
    version      text NOT NULL,
    description  text NOT NULL DEFAULT '',
    author       text NOT NULL DEFAULT '',
    digest       text NOT NULL,
    size         integer NOT NULL,
    manifest     jsonb NOT NULL,
    enabled      boolean NOT NULL DEFAULT false,
    -- the position of the PluginEnabled event: an earlier-enabled plugin wins a command conflict
    enabled_seq  bigint,
    config       jsonb NOT NULL DEFAULT '{}'::jsonb,
    revision     integer NOT NULL DEFAULT 0,
    stream_version bigint NOT NULL,
    installed_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- The admin's decisions about commands (toggle, rename, conflict resolution), by handler.
CREATE TABLE command_overrides (
    handler_full_name text PRIMARY KEY,
    enabled           boolean,
    new_name          text,
    aliases           jsonb,
    resolved          text,
    updated_at        timestamptz NOT NULL
);
