"""Which stdio MCP commands may run (DESIGN.md "Tools and MCP").

An admin token must not equal arbitrary command execution, so the allow-list is set by the operator
only: `CHATBUS_MCP_STDIO_ALLOW` (`;`-separated argv prefixes) and the file `mcp-stdio-allow.txt` in
the data directory (one prefix a line, `#` comments), never by the config API. Nothing is allowed by
default. A prefix is matched word by word against `[command, *args]`; a first word `python` means any
bare python executable name (`python`, `python3`, `python3.12`), which runs as chatbus's own
interpreter. Broad prefixes (`npx -y`, `uvx`, `python -m`) let the admin pick any package or module
from that launcher, so the launcher's own ways to run code from a path, a URL or an argument are
refused as well: these are pure functions, unit-tested against those attacks."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENV_VAR = "CHATBUS_MCP_STDIO_ALLOW"
ALLOW_FILE = "mcp-stdio-allow.txt"
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?\Z")
# Characters a shell (or Windows' cmd.exe behind an `npx.cmd` shim) would interpret.
_SHELL_META = set(";|&$`<>(){}*?!\\'\"~\n\r\0")
# Flags that make an interpreter or launcher evaluate code, preload a file or run a shell command.
_EVAL_FLAGS = frozenset(
    {"-c", "-e", "--eval", "-p", "--print", "-r", "--require", "--import", "--loader", "--experimental-loader"}
)
_EVAL_PREFIXES = ("--eval=", "--print=", "--require=", "--import=", "--loader=", "--experimental-loader=", "--call")
# Python flags that only change buffering/isolation, allowed before `-m`.
_PYTHON_SAFE_FLAGS = frozenset({"-u", "-B", "-I", "-E", "-s", "-O", "-OO", "-q"})
# Standard-library (and common) modules whose command line runs code from an argument or a path,
# installs packages, or serves files.
_PYTHON_RUNNERS = frozenset(
    {
        "pdb", "cProfile", "profile", "trace", "timeit", "code", "runpy", "pip", "ensurepip", "venv",
        "idlelib", "idlelib.idle", "zipapp", "compileall", "py_compile", "doctest", "unittest", "pytest",
        "IPython", "asyncio", "sqlite3", "site", "pydoc", "http.server", "webbrowser", "tkinter",
        "turtledemo", "uv", "pipx", "setuptools", "distutils", "json.tool", "tarfile", "zipfile",
        "shutil", "ast", "dis", "tokenize", "tabnanny", "pickle", "pickletools", "encodings.rot_13",
    }
)  # fmt: skip
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
# npm: `name`, `@scope/name`, optional `@version` (letters, digits, `.`, `-`, `_` only: no ranges).
_NPM_PACKAGE = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*(@[A-Za-z0-9._-]+)?\Z")
_NPX_SAFE_FLAGS = frozenset({"-y", "--yes", "-q", "--quiet", "--no-install"})
# PyPI: `name`, `name[extra,...]`, optional `==version` or `@version`.
_PYPI_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?((==|@)[A-Za-z0-9.+_-]+)?\Z")
_UVX_SAFE_FLAGS = frozenset({"-q", "--quiet", "--offline", "--isolated", "--no-progress"})
# Environment variables that change what a launcher runs or where it fetches code from.
_ENV_REFUSED_PREFIXES = (
    "PYTHON", "NODE_", "NPM_CONFIG_", "NPX_", "UV_", "PIP_", "LD_", "DYLD_", "GIT_", "BASH_", "PERL",
    "RUBY", "JAVA_", "COREPACK_", "BUN_", "DENO_", "CONDA_", "VIRTUAL_ENV", "CHATBUS_",
)  # fmt: skip
_ENV_REFUSED = frozenset(
    {
        "PATH", "HOME", "USERPROFILE", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "SHELL", "ENV",
        "IFS", "BROWSER", "EDITOR", "VISUAL", "PAGER", "PS4", "PROMPT_COMMAND", "COMSPEC", "PATHEXT",
        "TMPDIR", "TEMP", "TMP",
    }
)  # fmt: skip


@dataclass(frozen=True)
class AllowList:
    prefixes: tuple[tuple[str, ...], ...]


def parse_prefixes(lines: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    out: list[tuple[str, ...]] = []
    for line in lines:
        words = tuple(line.split("#", 1)[0].split())
        if words and words not in out:
            out.append(words)
    return tuple(out)


def data_dir() -> str:
    """The data directory, with the same default as chatbus/settings.py."""
    return os.environ.get("CHATBUS_DATA_DIR", "./.chatbus")


def load_allow_list(environ: Mapping[str, str] | None = None, directory: str | None = None) -> AllowList:
    """The operator's prefixes: the environment variable plus the data-dir file (read on every check,
    so an edit applies without a restart). A symlinked file is ignored: only a file the operator put
    there counts."""
    env = os.environ if environ is None else environ
    lines = env.get(ENV_VAR, "").split(";")
    path = os.path.join(directory or data_dir(), ALLOW_FILE)
    try:
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, encoding="utf-8") as fh:
                lines += fh.read(64_000).splitlines()
    except OSError:
        pass
    return AllowList(parse_prefixes(lines))


def is_python(command: str) -> bool:
    """A bare python executable name (`python`, `python3`, `python3.12`), not a path."""
    return bool(_PYTHON.match(command))


def _word_matches(allowed: str, word: str, first: bool) -> bool:
    if first and allowed == "python":
        return bool(_PYTHON.match(word))
    return allowed == word


def _matching_prefix(argv: Sequence[str], allow: AllowList) -> tuple[str, ...] | None:
    best: tuple[str, ...] | None = None
    for prefix in allow.prefixes:
        if len(prefix) > len(argv) or (best is not None and len(prefix) <= len(best)):
            continue
        if all(_word_matches(p, argv[i], i == 0) for i, p in enumerate(prefix)):
            best = prefix
    return best


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _refers_into(token: str, cwd: str, root: str) -> bool:
    """Does this argument (or the value of `--opt=value`, or a `file:` URL) name a path in root?"""
    candidates = [token]
    if "=" in token:
        candidates.append(token.split("=", 1)[1])
    for cand in candidates:
        if cand.startswith("file:"):
            cand = cand[5:].lstrip("/")
            cand = "/" + cand
        if not cand or ("/" not in cand and not cand.startswith(".") and os.sep not in cand):
            continue
        if _inside(os.path.realpath(os.path.join(cwd, cand)), root):
            return True
    return False


def check_stdio(
    command: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    allow: AllowList,
    data_directory: str | None = None,
) -> str | None:
    """None when this stdio server may start; else the short reason it is refused."""
    argv = [command, *args]
    root = os.path.realpath(data_directory or data_dir())
    base_cwd = os.path.realpath(cwd) if cwd else os.getcwd()
    for token in argv:
        bad = sorted(set(token) & _SHELL_META)
        if bad:
            return f"shell metacharacters are not allowed in a stdio command ({''.join(bad)!r})"
        if token in _EVAL_FLAGS or token.startswith(_EVAL_PREFIXES):
            return f"{token.split('=', 1)[0]} is not allowed in a stdio command"
    for key in env or {}:
        upper = key.upper()
        if upper in _ENV_REFUSED or upper.startswith(_ENV_REFUSED_PREFIXES):
            return f"the environment variable {key} is not allowed for a stdio server"
    if _inside(base_cwd, root):
        return "cwd must not be inside the data directory"
    if any(_refers_into(token, base_cwd, root) for token in argv):
        return "paths into the data directory are not allowed"
    prefix = _matching_prefix(argv, allow)
    if prefix is None:
        return f"stdio command not allowed: set {ENV_VAR} or {ALLOW_FILE} in the data directory to allow it"
    if ("/" in command or os.sep in command) and prefix[0] != command:
        return "the command must be a bare name unless its path is in the allow-list"
    return _launcher_rule(argv, len(prefix))


def _launcher_rule(argv: Sequence[str], matched: int) -> str | None:
    """Launcher-specific rules for what follows the operator's prefix."""
    name = os.path.basename(argv[0])
    if _PYTHON.match(name):
        return _python_rule(argv, matched)
    if name in ("npx", "npx.cmd"):
        return _package_rule(argv, matched, _NPX_SAFE_FLAGS, _NPM_PACKAGE, "npm")
    if name in ("uvx", "uvx.exe"):
        return _package_rule(argv, matched, _UVX_SAFE_FLAGS, _PYPI_PACKAGE, "PyPI")
    if name in ("node", "node.exe", "bun", "deno") and matched < 2:
        return f"{name} runs any script: put the script's path in the allow-list entry"
    return None


def _python_rule(argv: Sequence[str], matched: int) -> str | None:
    i = 1
    while i < len(argv) and argv[i] in _PYTHON_SAFE_FLAGS:
        i += 1
    if i >= len(argv) or argv[i] != "-m":
        return "python runs only a module (`python -m <module>`), never a script path or other flags"
    if i + 1 >= len(argv):
        return "python -m needs a module name"
    module = argv[i + 1]
    if i + 1 < matched:  # the operator named this exact module
        return None
    if not _MODULE.match(module):
        return "python -m needs a module name, not a path"
    if module in _PYTHON_RUNNERS or module.split(".")[0] in _PYTHON_RUNNERS:
        return f"python -m {module} can run arbitrary code: not allowed unless the allow-list names it"
    return None


def _package_rule(
    argv: Sequence[str], matched: int, safe: frozenset[str], pattern: re.Pattern[str], registry: str
) -> str | None:
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] not in safe and i >= matched:
            return f"{argv[i]} is not allowed before the package name"
        i += 1
    if i >= len(argv):
        return "a package name is needed"
    if i < matched:  # the operator named this exact package
        return None
    if not pattern.match(argv[i]):
        return f"{argv[i][:100]!r} is not a {registry} package name (paths, URLs and git specs are refused)"
    return None
