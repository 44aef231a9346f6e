"""The web panel (DESIGN.md "Web panel"): static ES modules from package data, served by the edge at `/`.

No build step: the files under api/panel/static/ are what the browser runs. They are read once, at import,
and served from memory. Every asset URL carries a digest of the whole panel (`/panel/<digest>/app.js`), so
assets can be cached for good while index.html, which names the digest, is always revalidated: an upgraded
edge is picked up on the next page load. The panel holds no data of its own and needs no token; everything
it shows comes from the public API, called by the browser with the `auth_token` cookie."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get

from api.envelope import ApiError

STATIC = Path(__file__).resolve().parent.parent / "panel" / "static"
PREFIX = "/panel"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".md": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",  # the LICENSE files
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True)
class Panel:
    digest: str
    assets: dict[str, Asset]
    index: bytes
    csp: str


def _import_map_hash(html: str) -> str:
    """The CSP hash of the inline import map: the one inline script, allowed by its hash, nothing else."""
    start = html.index('<script type="importmap">') + len('<script type="importmap">')
    end = html.index("</script>", start)
    return base64.b64encode(hashlib.sha256(html[start:end].encode()).digest()).decode()


def load_panel(root: Path = STATIC) -> Panel:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    whole = hashlib.sha256()
    assets: dict[str, Asset] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        body = path.read_bytes()
        whole.update(rel.encode() + b"\0" + body)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        assets[rel] = Asset(body, MEDIA_TYPES.get(path.suffix, "application/octet-stream"), etag)
    digest = whole.hexdigest()[:12]
    html = assets.pop("index.html").body.decode().replace("{{ASSETS}}", f"{PREFIX}/{digest}")
    csp = (
        "default-src 'self'; "
        f"script-src 'self' 'sha256-{_import_map_hash(html)}'; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
    return Panel(digest, assets, html.encode(), csp)


PANEL = load_panel()


def _index() -> Response[bytes]:
    return Response(
        content=PANEL.index,
        media_type=MEDIA_TYPES[".html"],
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": PANEL.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


@get(["/", PREFIX], include_in_schema=False)
async def panel_index() -> Response[bytes]:
    return _index()


@get(f"{PREFIX}/{{file_path:path}}", include_in_schema=False)
async def panel_asset(request: Request[Any, Any, Any], file_path: str) -> Response[bytes]:
    """`/panel/<digest>/<file>`: an asset. Any other path without a file extension is a panel page: index.html."""
    parts = file_path.strip("/").split("/", 1)
    rel = parts[1] if len(parts) == 2 else ""
    asset = PANEL.assets.get(rel)
    if asset is None:
        if "." not in file_path.rsplit("/", 1)[-1]:
            return _index()
        raise ApiError("NOT_FOUND", f"no panel file {file_path}")
    current = parts[0] == PANEL.digest
    headers = {
        # An asset under the current digest never changes; one asked for under an old digest is today's
        # file, so it must not be kept.
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "ETag": asset.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=asset.body, media_type=asset.media_type, headers=headers)
