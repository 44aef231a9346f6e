-- MCP server configs (tools domain): one row per server, the projection of McpServerAdded/Updated/
-- Removed. `env`/`headers` values in `config` are sealed (bus/crypto.py), never plaintext.
CREATE TABLE mcp_servers (
    name       text PRIMARY KEY,
    config     jsonb NOT NULL,
    position   bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
