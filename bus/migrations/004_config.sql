-- Read table of the config domain: every version of the config document.
CREATE TABLE config_versions (
    version        bigint PRIMARY KEY,
    document       jsonb NOT NULL,
    paths          text[] NOT NULL,
    kind           text NOT NULL,
    rolled_back_to bigint,
    actor          text,
    request_id     text,
    changed_at     timestamptz NOT NULL
);
