-- Issue 7 hardening of idempotency and auth.
-- The hash of the request an Idempotency-Key came with: the same key with another body is a conflict.
ALTER TABLE processed_commands ADD COLUMN request_hash text;

-- Bumped by every password change: tokens and login links carry the epoch they were issued in.
ALTER TABLE users ADD COLUMN password_epoch integer NOT NULL DEFAULT 0;

-- Login links (no secrets: the token itself is never stored), listed and revoked by their owner.
CREATE TABLE login_links (
    jti            text PRIMARY KEY,
    username       text NOT NULL,
    permanent      boolean NOT NULL,
    password_epoch integer NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX login_links_user_idx ON login_links (username, created_at);
