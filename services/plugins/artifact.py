"""A plugin artifact: a zip checked before a single byte of it is trusted (AstrBot #7168 ran the code
of an uploaded zip; zip-slip and zip bombs are the classic follow-ups). Nothing here runs or imports
anything from the archive."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import msgspec

from schemas.errors import DomainError
from schemas.plugins import MANIFEST_FILE, Manifest

MAX_ZIP_BYTES = 2 * 1024 * 1024  # under the edge's 4 MiB body limit, so the refusal is ours
MAX_ENTRIES = 500
MAX_UNCOMPRESSED = 50 * 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class Artifact:
    digest: str
    size: int
    manifest: Manifest


def _bad(reason: str, path: str = "file") -> DomainError:
    return DomainError("VALIDATION_ERROR", reason, details=[{"field": path, "reason": reason, "source": "body"}])


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _bad(f"the archive holds a link: {name!r}")
    kind = stat.S_IFMT(mode)  # 0 from zips made without Unix modes (Windows, Python's writestr)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise _bad(f"the archive holds a special file: {name!r}")
    if "\\" in name or "\0" in name:
        raise _bad(f"bad entry name: {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _bad(f"absolute path in the archive: {name!r}")
    if ".." in path.parts:
        raise _bad(f"`..` in an archive path: {name!r}")


def manifest_of(raw: bytes) -> Manifest:
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.ValidationError as exc:
        reason, _, where = str(exc).partition(" - at `$")
        field = where.rstrip("`").lstrip(".") or "manifest"
        raise _bad(f"{MANIFEST_FILE}: {reason} at {field}", f"manifest.{field}") from exc
    except msgspec.DecodeError as exc:
        raise _bad(f"{MANIFEST_FILE} is not valid JSON: {exc}") from exc


def inspect(data: bytes) -> Artifact:
    """Check a zip (size, entry count, total size, no links, no absolute or `..` paths) and read its
    manifest; raises a 400 DomainError saying what is wrong."""
    if len(data) > MAX_ZIP_BYTES:
        raise DomainError("PAYLOAD_TOO_LARGE", f"plugin archives are at most {MAX_ZIP_BYTES} bytes", status=413)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise _bad(f"not a zip archive: {exc}") from exc
    if len(infos) > MAX_ENTRIES:
        raise _bad(f"the archive has more than {MAX_ENTRIES} entries")
    total = 0
    for info in infos:
        _check_entry(info)
        total += info.file_size
        if total > MAX_UNCOMPRESSED:
            raise _bad(f"the archive unpacks to more than {MAX_UNCOMPRESSED} bytes")
    names = {i.filename for i in infos}
    if MANIFEST_FILE not in names:
        raise _bad(f"the archive has no {MANIFEST_FILE} at its top level")
    info = archive.getinfo(MANIFEST_FILE)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise _bad(f"{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes")
    manifest = manifest_of(archive.read(info))
    _check_schema(manifest)
    return Artifact(hashlib.sha256(data).hexdigest(), len(data), manifest)


def _check_schema(manifest: Manifest) -> None:
    if not manifest.config_schema:
        return
    import jsonschema  # only here: the edge and workers that never see a manifest skip the import

    try:
        jsonschema.Draft202012Validator.check_schema(manifest.config_schema)
    except jsonschema.SchemaError as exc:
        raise _bad(
            f"{MANIFEST_FILE}: configSchema is not a JSON schema: {exc.message}", "manifest.configSchema"
        ) from exc


def extract(data: bytes, root: Path, digest: str) -> Path:
    """Unpack (once) into `root/<digest>`: checked again, written by our own code entry by entry (never
    `extractall`), into a temporary folder renamed into place, so a half-written copy is never used."""
    target = root / digest
    if target.is_dir():
        return target
    if hashlib.sha256(data).hexdigest() != digest:
        raise DomainError("INTERNAL_ERROR", "stored plugin bytes do not match their digest")
    inspect(data)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=root))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                dest = (work / info.filename).resolve()
                if not dest.is_relative_to(work.resolve()):
                    raise _bad(f"entry escapes the plugin folder: {info.filename!r}")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(dest, 0o644)
        os.replace(work, target)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
        if not target.is_dir():  # another worker renamed its copy first: that one is as good
            raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target
