-- Read tables of the auth domain (projection of user-* and loginlink-* streams).
CREATE TABLE users (
    username      text PRIMARY KEY,
    password_hash text NOT NULL,
    scope         text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_login_at timestamptz,
    version       bigint NOT NULL
);

CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL
);

CREATE TABLE login_failures (
    username  text NOT NULL,
    client_ip text NOT NULL,
    failed_at timestamptz NOT NULL
);
CREATE INDEX login_failures_idx ON login_failures (username, client_ip, failed_at);
