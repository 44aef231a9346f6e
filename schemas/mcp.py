"""MCP server configs (API.md §8): the one strict shape, the normaliser that accepts every client's
spelling (flat, ChatAI's nested `{name, config}`, `type: npm`, Claude Desktop's `mcpServers` import
document), status and call results, and masking of the secrets in `env`/`headers` for reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
from msgspec import Meta

from schemas.errors import DomainError
from schemas.secrets import MASK, mask_value

ServerName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")]
TransportType = Literal["stdio", "sse", "http"]
ServerStatus = Literal["connected", "connecting", "disconnected", "error"]
_Key = Annotated[str, Meta(min_length=1, max_length=200)]
_Value = Annotated[str, Meta(max_length=8000)]
Secrets = Annotated[dict[_Key, _Value], Meta(max_length=100)]

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0


class McpServerConfig(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """One MCP server as stored. `timeout` is the per-call timeout in seconds."""

    name: ServerName
    type: TransportType = "stdio"
    command: Annotated[str, Meta(min_length=1, max_length=500)] | None = None
    args: Annotated[list[Annotated[str, Meta(max_length=2000)]], Meta(max_length=100)] = []
    env: Secrets = {}
    cwd: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    url: Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"^https?://\S+\Z")] | None = None
    headers: Secrets = {}
    timeout: Annotated[float, Meta(gt=0, le=MAX_TIMEOUT_S)] = DEFAULT_TIMEOUT_S
    enabled: bool = True
    auto_reconnect: bool = True

    def __post_init__(self) -> None:
        # msgspec runs this on decode too, so an invalid combination never gets stored.
        if self.type == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs `command`")
            if self.url is not None:
                raise ValueError("a stdio server takes `command`, not `url`")
        else:
            if not self.url:
                raise ValueError(f"an {self.type} server needs `url`")
            if self.command is not None or self.args or self.env or self.cwd is not None:
                raise ValueError(f"an {self.type} server takes `url`/`headers`, not `command`/`args`/`env`/`cwd`")
        if any("\0" in s for s in (self.command or "", self.cwd or "", *self.args)):
            raise ValueError("NUL bytes are not allowed")


class McpServerState(msgspec.Struct, rename="camel", kw_only=True):
    """Live state of one server's session in one process (one `instances[]` entry of API.md §8)."""

    name: str
    status: ServerStatus = "disconnected"
    error: str | None = None
    connected_at: str | None = None  # ISO 8601, UTC
    tools_count: int = 0
    resources_count: int = 0
    prompts_count: int = 0


class McpToolInfo(msgspec.Struct, rename="camel", kw_only=True):
    """A tool an MCP server offers, under its registry name `<server>__<tool>`."""

    name: str
    server_name: str
    tool_name: str
    description: str
    input_schema: dict[str, Any]


class McpCallResult(msgspec.Struct, rename="camel", kw_only=True):
    """`text` is what the model sees; `is_error` covers tool errors, timeouts and transport failures."""

    text: str
    is_error: bool
    duration: float  # milliseconds
    server_name: str | None = None
    tool_name: str | None = None


# ---- normalising client bodies ---------------------------------------------------------------

_ALIASES = {
    "transport": "type",
    "auto_reconnect": "autoReconnect",
    "autoreconnect": "autoReconnect",
    "working_directory": "cwd",
    "workingDirectory": "cwd",
    "baseUrl": "url",
    "serverUrl": "url",
}
_TYPE_ALIASES = {
    "stdio": "stdio",
    "sse": "sse",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "streamablehttpclient": "http",
    "npm": "npm",
}
# Read-only fields a client may send back from a GET (dropped, never stored).
_READ_ONLY = frozenset(
    {
        "status",
        "toolsCount",
        "toolCount",
        "resourcesCount",
        "promptsCount",
        "error",
        "connectedAt",
        "instances",
        "tools",
        "id",
        "createdAt",
        "updatedAt",
        "version",
        "description",
        "disabled",
        "package",
        "config",
    }
)


def _invalid(message: str) -> DomainError:
    return DomainError("INVALID_ARGS", message)


def normalize_server(body: Mapping[str, Any], *, name: str | None = None) -> McpServerConfig:
    """Any accepted spelling -> `McpServerConfig`, or `DomainError(INVALID_ARGS)` with a short message.

    `name` (from the URL path or the import document's key) wins over a name in the body."""
    if not isinstance(body, Mapping):
        raise _invalid("an MCP server must be a JSON object")
    flat: dict[str, Any] = dict(body)
    nested = flat.get("config")
    if isinstance(nested, Mapping):  # ChatAI: {name, config: {type, command, args, env, package, url, headers}}
        flat = {**{k: v for k, v in flat.items() if k != "config"}, **nested}
    elif nested is not None:
        raise _invalid("`config` must be an object")
    for alias, key in _ALIASES.items():
        if alias in flat:
            value = flat.pop(alias)
            flat.setdefault(key, value)
    if name is not None:
        flat["name"] = name
    if "disabled" in flat and "enabled" not in flat:  # Claude Desktop / Cline spelling
        flat["enabled"] = not bool(flat["disabled"])

    kind = flat.get("type")
    if kind is None:
        kind = "stdio" if flat.get("command") or flat.get("package") else _type_from_url(flat.get("url"))
    if not isinstance(kind, str) or kind.replace(" ", "").lower() not in _TYPE_ALIASES:
        raise _invalid("`type` must be stdio, sse, http or npm")
    kind = _TYPE_ALIASES[kind.replace(" ", "").lower()]
    if kind == "npm":  # ChatAI: an npm package run with `npx -y <package> [args...]`
        package = flat.get("package")
        if not isinstance(package, str) or not package.strip():
            raise _invalid("`type: npm` needs `package`")
        extra = flat.get("args") or []
        if not isinstance(extra, list):
            raise _invalid("`args` must be a list of strings")
        flat["command"] = "npx"
        flat["args"] = ["-y", package.strip(), *extra]
        kind = "stdio"
    flat["type"] = kind
    if isinstance(flat.get("args"), str):  # a single string is a common hand-written mistake
        raise _invalid("`args` must be a list of strings")
    if flat.get("timeout") is not None:
        flat["timeout"] = _timeout_seconds(flat["timeout"])
    for key in ("command", "cwd", "url"):
        if flat.get(key) == "":
            flat[key] = None
    if kind != "stdio":  # clients send empty stdio fields along with a url; drop them rather than refuse
        for key in ("command", "cwd"):
            if flat.get(key) is None:
                flat.pop(key, None)
        if flat.get("args") == []:
            flat.pop("args")
        if flat.get("env") == {}:
            flat.pop("env")
    clean = {k: v for k, v in flat.items() if k not in _READ_ONLY and v is not None}
    try:
        return msgspec.convert(clean, McpServerConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        raise _invalid(f"invalid MCP server: {_short(exc)}") from None


def _type_from_url(url: Any) -> str:
    if not isinstance(url, str) or not url:
        raise _invalid("an MCP server needs `command` (stdio) or `url` (sse/http)")
    return "sse" if urlsplit(url).path.rstrip("/").endswith("/sse") else "http"


def _timeout_seconds(value: Any) -> float:
    """Seconds; a value over 1000 can only be milliseconds (ChatAI and NekoBot send ms)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid("`timeout` must be a number of seconds")
    return float(value) / 1000.0 if value > 1000 else float(value)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


@dataclass
class ImportResult:
    """`POST /api/mcp/import` -> `{success, failed, total, errors}` (the caller stores `configs`)."""

    configs: list[McpServerConfig] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.configs) + len(self.errors)


def parse_import(document: Any) -> ImportResult:
    """Claude Desktop's `{mcpServers: {name: {command, args, env} | {url, headers, type}}}` (VS Code's
    `servers` key too) -> one config per entry plus one `{name, error}` per entry that is refused."""
    if not isinstance(document, Mapping):
        raise _invalid("the import document must be a JSON object")
    servers = document.get("mcpServers", document.get("servers"))
    if not isinstance(servers, Mapping):
        raise _invalid("the import document needs an `mcpServers` object")
    result = ImportResult()
    for key, entry in servers.items():
        label = str(key)[:100]
        if not isinstance(entry, Mapping):
            result.errors.append({"name": label, "error": "an entry must be an object"})
            continue
        try:
            result.configs.append(normalize_server(entry, name=str(key)))
        except DomainError as exc:
            result.errors.append({"name": label, "error": exc.message})
    return result


# ---- masking for reads ------------------------------------------------------------------------


def mask_url(url: str | None) -> str | None:
    """A password in the URL's userinfo is a secret too."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:{MASK}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def masked(config: McpServerConfig) -> dict[str, Any]:
    """The config as a read shows it: every `env` and `headers` value masked."""
    doc: dict[str, Any] = msgspec.to_builtins(config)
    doc["env"] = {k: mask_value(v) for k, v in config.env.items()}
    doc["headers"] = {k: mask_value(v) for k, v in config.headers.items()}
    doc["url"] = mask_url(config.url)
    return doc


def keep_masked_secrets(current: McpServerConfig, incoming: McpServerConfig) -> McpServerConfig:
    """A client that PUTs back a masked value it read means "unchanged": restore the stored one."""

    def restore(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
        return {k: old[k] if k in old and MASK in v and v == mask_value(old[k]) else v for k, v in new.items()}

    url = incoming.url
    if url and current.url and MASK in url and url == mask_url(current.url):
        url = current.url
    return msgspec.structs.replace(
        incoming, env=restore(current.env, incoming.env), headers=restore(current.headers, incoming.headers), url=url
    )


_QUALIFIED_OK = re.compile(r"[^A-Za-z0-9_-]")


def sanitize_name(name: str) -> str:
    """`[A-Za-z0-9_-]` only (the OpenAI/Anthropic/Gemini function-name alphabet)."""
    return _QUALIFIED_OK.sub("_", name)


# ---- commands (cmd.tools.mcp_*) and events ---------------------------------------------------
# A server's config lives on its own stream `mcp-server-<name>`; `env`/`headers` values (and a URL
# password) are sealed (bus/crypto.py) before the config becomes an event.


class McpServerBody(msgspec.Struct, kw_only=True):
    """`cmd.tools.mcp_add` / `mcp_update`: the client's body, normalised by the worker."""

    body: dict[str, Any]
    name: str | None = None  # the URL's name (update), which wins over the body's


class McpServerRef(msgspec.Struct, kw_only=True):
    name: str


class McpImport(msgspec.Struct, kw_only=True):
    document: Any


class McpServerAdded(msgspec.Struct, kw_only=True):
    name: str
    config: dict[str, Any]  # McpServerConfig's JSON, secrets sealed


class McpServerUpdated(msgspec.Struct, kw_only=True):
    name: str
    config: dict[str, Any]


class McpServerRemoved(msgspec.Struct, kw_only=True):
    name: str
