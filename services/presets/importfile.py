"""Reading a preset import file (JSON or YAML) within bounds.

YAML anchors let a few hundred bytes describe a document of 10^9 nodes ("billion laughs"): PyYAML builds
it as shared references, but everything after (JSON encoding, validation) walks the expansion. So the
composer counts what the document expands to, and refuses it beyond MAX_NODES, beyond MAX_DEPTH, with
more than MAX_ALIASES aliases, or with an alias to an unfinished node (a cycle). Parsing is CPU work:
callers run `parse_import` in a thread, so that even a bounded parse does not hold an event loop."""

from __future__ import annotations

from typing import Any

import msgspec
import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from schemas.errors import DomainError

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1000
MAX_NODES = 500_000  # expanded, aliases counted as often as they are used
MAX_PRESETS = 500


class _Limits(Exception):
    """A YAML document over a limit; not a YAMLError, so that it is reported as such."""


class BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._weights: dict[int, int] = {}  # id(node) -> nodes it expands to

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Limits(f"more than {MAX_ALIASES} aliases")
            node = super().compose_node(parent, index)
            if id(node) not in self._weights:
                raise _Limits("an alias refers to a node that contains it (a cycle)")
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Limits(f"nested deeper than {MAX_DEPTH} levels")
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is None:
            return None
        self._weights[id(node)] = weight = self._weight(node)
        if weight > MAX_NODES:
            raise _Limits(f"expands to more than {MAX_NODES} nodes")
        return node

    def _weight(self, node: Node) -> int:
        if isinstance(node, ScalarNode):
            return 1
        if isinstance(node, SequenceNode):
            return 1 + sum(self._weights[id(child)] for child in node.value)
        if isinstance(node, MappingNode):
            return 1 + sum(self._weights[id(k)] + self._weights[id(v)] for k, v in node.value)
        return 1


def _load_yaml(raw: bytes) -> Any:
    loader = BoundedLoader(raw)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether containers nest deeper than `limit` (a JSON file in a multipart upload is not bounded
    by the edge's body check, and a deep payload would fail in every decoder after this one)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_import(raw: bytes, *, is_yaml: bool) -> list[dict[str, Any]]:
    """A preset file -> a list of preset documents (JSON types only). Accepts one document, a list,
    `{presets: [...]}`, or an exported envelope `{data: ...}`. Raises DomainError."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise DomainError("PAYLOAD_TOO_LARGE", f"import file is larger than {MAX_IMPORT_BYTES} bytes", status=413)
    if not raw.strip():
        raise DomainError("VALIDATION_ERROR", "empty import body")
    kind = "YAML" if is_yaml else "JSON"
    try:
        parsed = _load_yaml(raw) if is_yaml else msgspec.json.decode(raw)
    except _Limits as exc:
        raise DomainError("VALIDATION_ERROR", f"the YAML import is too complex: {exc}") from exc
    except (yaml.YAMLError, ComposerError, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DomainError("PARSE_ERROR", f"cannot parse the import file as {kind}: {exc}") from exc
    if _too_deep(parsed):
        raise DomainError("VALIDATION_ERROR", f"the import nests deeper than {MAX_DEPTH} levels")
    if isinstance(parsed, dict) and isinstance(parsed.get("data"), dict | list) and "name" not in parsed:
        parsed = parsed["data"]
    if isinstance(parsed, dict) and isinstance(parsed.get("presets"), list):
        parsed = parsed["presets"]
    docs = parsed if isinstance(parsed, list) else [parsed]
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise DomainError("VALIDATION_ERROR", "an import is a preset object, a list of them, or {presets: [...]}")
    if len(docs) > MAX_PRESETS:
        raise DomainError("VALIDATION_ERROR", f"at most {MAX_PRESETS} presets per import")
    # Round-trip through JSON so YAML-only types (dates, binary, odd keys) cannot reach the command.
    try:
        result: list[dict[str, Any]] = msgspec.json.decode(msgspec.json.encode(docs))
    except (TypeError, ValueError, msgspec.EncodeError, RecursionError) as exc:
        raise DomainError("VALIDATION_ERROR", f"the import holds values JSON cannot carry: {exc}") from exc
    return result
