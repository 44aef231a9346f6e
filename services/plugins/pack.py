"""`chatbus plugin pack DIR`: a plugin folder -> the zip the upload takes, checked the same way."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from schemas.errors import DomainError
from schemas.plugins import MANIFEST_FILE
from services.plugins import artifact

SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules"}


def pack(folder: Path) -> bytes:
    """Regular files only (links are skipped: the upload refuses them), sorted, with fixed dates, so
    the same folder always packs to the same digest."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if any(part in SKIP_DIRS for part in relative.parts) or path.is_symlink() or not path.is_file():
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    artifact.inspect(data)
    return data


def pack_to(folder: str, out: str | None) -> Path:
    source = Path(folder)
    if not (source / MANIFEST_FILE).is_file():
        raise SystemExit(f"{folder}: no {MANIFEST_FILE}")
    try:
        data = pack(source)
    except DomainError as exc:  # what the upload would answer, as one line
        raise SystemExit(f"{folder}: {exc.message}") from None
    manifest = artifact.inspect(data).manifest
    target = Path(out) if out else Path(f"{manifest.name}-{manifest.version}.zip")
    target.write_bytes(data)
    return target
