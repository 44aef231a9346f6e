"""The stdio allow-list against the ways an admin token could turn an MCP config into code execution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.tools.mcp.allowlist import ALLOW_FILE, ENV_VAR, AllowList, check_stdio, load_allow_list, parse_prefixes

BROAD = AllowList(parse_prefixes(["uvx", "npx -y", "python -m", "node /opt/mcp/server.js"]))


@pytest.fixture()
def data_dir(tmp_path: Path) -> str:
    d = tmp_path / "data"
    d.mkdir()
    return str(d)


def check(argv: list[str], data_dir: str, allow: AllowList = BROAD, **kw: object) -> str | None:
    return check_stdio(argv[0], argv[1:], allow=allow, data_directory=data_dir, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "argv",
    [
        ["uvx", "mcp-server-git"],
        ["uvx", "mcp-server-fetch==2025.1.1"],
        ["uvx", "--quiet", "mcp-server-time", "--local-timezone", "UTC"],
        ["npx", "-y", "@modelcontextprotocol/server-everything"],
        ["npx", "-y", "some-server@1.2.3", "--port", "3000"],
        ["python", "-m", "mcp_server_time"],
        ["python3", "-m", "mcp_server_time"],
        ["python3.12", "-m", "mcp_server_time", "--local-timezone", "UTC"],
        ["node", "/opt/mcp/server.js", "--verbose"],
    ],
)
def test_allowed(argv: list[str], data_dir: str) -> None:
    assert check(argv, data_dir) is None


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        # nothing matches the operator's prefixes
        (["bash", "-lc", "id"], "not allowed"),
        (["sh", "x"], "not allowed"),
        (["curl", "http://x"], "not allowed"),
        (["npx", "some-server"], "not allowed"),  # `npx` without `-y` is not a listed prefix
        # interpreters told to evaluate code
        (["python", "-c", "import os"], "-c"),
        (["python", "-m", "mcp_server_time", "-c", "x"], "-c"),
        (["node", "-e", "require('child_process')"], "-e"),
        (["node", "--eval=1"], "--eval"),
        (["node", "-p", "1"], "-p"),
        (["node", "--require", "/tmp/x.js", "/opt/mcp/server.js"], "--require"),
        (["node", "-r", "/tmp/x.js", "/opt/mcp/server.js"], "-r"),
        (["node", "--import=/tmp/x.mjs", "/opt/mcp/server.js"], "--import"),
        (["npx", "-y", "--call", "id"], "--call"),
        (["npx", "-y", "--call=id"], "--call"),
        # shell metacharacters (an npx.cmd shim runs under cmd.exe)
        (["npx", "-y", "pkg;id"], "metacharacters"),
        (["uvx", "pkg", "$(id)"], "metacharacters"),
        (["uvx", "pkg", "`id`"], "metacharacters"),
        (["uvx", "pkg", "a|b"], "metacharacters"),
        (["uvx", "pkg", "a&b"], "metacharacters"),
        (["uvx", "pkg", "a\nb"], "metacharacters"),
        (["uvx", "pkg", "> /etc/passwd"], "metacharacters"),
        # python: a script path or a module that runs code from its arguments
        (["python", "/tmp/evil.py"], "not allowed"),
        (["python", "evil.py"], "not allowed"),
        (["python", "-m", "./evil"], "module name"),
        (["python", "-m", "/tmp/evil"], "module name"),
        (["python", "-m", "timeit", "__import__"], "arbitrary code"),
        (["python", "-m", "pdb", "script.py"], "arbitrary code"),
        (["python", "-m", "cProfile", "script.py"], "arbitrary code"),
        (["python", "-m", "trace", "--run", "script.py"], "arbitrary code"),
        (["python", "-m", "runpy"], "arbitrary code"),
        (["python", "-m", "pip", "install", "evil"], "arbitrary code"),
        (["python", "-m", "http.server"], "arbitrary code"),
        (["python", "-m", "idlelib.pyshell"], "arbitrary code"),
        (["python", "-X", "importtime", "-m", "mcp_server_time"], "not allowed"),
        (["python", "-Ic", "x"], "not allowed"),
        (["python", "-m"], "module name"),
        # npx / uvx: local paths, URLs, git specs, registry overrides instead of a package name
        (["npx", "-y", "./evil"], "package name"),
        (["npx", "-y", "/tmp/evil.tgz"], "package name"),
        (["npx", "-y", "github:attacker/repo"], "package name"),
        (["npx", "-y", "git+https://example.com/x.git"], "package name"),
        (["npx", "-y", "https://example.com/x.tgz"], "package name"),
        (["npx", "-y", "file:/tmp/x"], "package name"),
        (["npx", "-y", "--package=evil", "server"], "--package"),
        (["npx", "-y", "--registry=http://evil", "server"], "--registry"),
        (["npx", "-y", "--prefix", "/tmp", "server"], "--prefix"),
        (["uvx", "--from", "git+https://example.com/x", "server"], "--from"),
        (["uvx", "--with", "evil", "server"], "--with"),
        (["uvx", "--index-url", "http://evil", "server"], "--index-url"),
        (["uvx", "--python", "/tmp/python", "server"], "--python"),
        (["uvx", "./local-dir"], "package name"),
        (["uvx", "git+https://example.com/x"], "package name"),
        # node runs any script unless the operator named it
        (["node", "/tmp/evil.js"], "not allowed"),
        # a binary planted under an allowed name
        (["/tmp/bin/uvx", "mcp-server-git"], "not allowed"),
        (["./python", "-m", "mcp_server_time"], "not allowed"),
    ],
)
def test_refused(argv: list[str], why: str, data_dir: str) -> None:
    reason = check(argv, data_dir)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["python", "/tmp/evil.py"], "module"),
        (["python", "-u", "/tmp/evil.py"], "module"),
        (["python", "-Ic", "x"], "module"),
        (["python", "-X", "importtime", "-m", "mcp_server_time"], "module"),
        (["python", "-u", "-m", "timeit"], "arbitrary code"),
    ],
)
def test_a_bare_python_prefix_still_means_modules_only(argv: list[str], why: str, data_dir: str) -> None:
    bare = AllowList(parse_prefixes(["python"]))
    assert why in (check(argv, data_dir, bare) or "")
    assert check(["python", "-u", "-m", "mcp_server_time"], data_dir, bare) is None


def test_node_needs_script_in_prefix(data_dir: str) -> None:
    bare = AllowList(parse_prefixes(["node"]))
    assert "script" in (check(["node", "/opt/mcp/server.js"], data_dir, bare) or "")


def test_paths_into_the_data_directory(data_dir: str) -> None:
    planted = os.path.join(data_dir, "plugins", "evil.py")
    assert "data directory" in (check(["uvx", "server", planted], data_dir) or "")
    assert "data directory" in (check(["uvx", "server", f"--config={planted}"], data_dir) or "")
    assert "data directory" in (check(["uvx", "server", f"file://{planted}"], data_dir) or "")
    # a relative path that resolves into it from the given cwd
    parent = os.path.dirname(data_dir)
    assert "data directory" in (check(["uvx", "server", "./data/x"], data_dir, cwd=parent) or "")
    assert "data directory" in (check(["uvx", "server", "../data/x"], data_dir, cwd=os.path.join(parent, "y")) or "")
    # the working directory itself: `python -m` imports from it
    assert "cwd" in (check(["python", "-m", "evil"], data_dir, cwd=data_dir) or "")
    assert "cwd" in (check(["python", "-m", "evil"], data_dir, cwd=os.path.join(data_dir, "sub")) or "")


def test_symlink_into_the_data_directory(data_dir: str, tmp_path: Path) -> None:
    link = tmp_path / "innocent"
    link.symlink_to(data_dir)
    assert "data directory" in (check(["uvx", "server", str(link / "x")], data_dir) or "")


@pytest.mark.parametrize(
    "key",
    [
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONWARNINGS",
        "NODE_OPTIONS",
        "LD_PRELOAD",
        "DYLD_INSERT_LIBRARIES",
        "PATH",
        "HOME",
        "npm_config_registry",
        "NPM_CONFIG_USERCONFIG",
        "UV_INDEX_URL",
        "PIP_INDEX_URL",
        "GIT_SSH_COMMAND",
        "BASH_ENV",
        "XDG_CONFIG_HOME",
        "PERL5OPT",
    ],
)
def test_environment_that_changes_what_runs(key: str, data_dir: str) -> None:
    reason = check(["uvx", "mcp-server-git"], data_dir, env={key: "x"})
    assert reason is not None
    assert key in reason


def test_ordinary_secrets_in_env_pass(data_dir: str) -> None:
    assert check(["uvx", "mcp-server-git"], data_dir, env={"GITHUB_TOKEN": "ghp_x", "API_KEY": "k"}) is None


def test_an_exact_prefix_allows_what_a_broad_one_refuses(data_dir: str) -> None:
    exact = AllowList(parse_prefixes(["python -m tests.fakes.mcp_server", "npx -y ./vendored"]))
    assert check(["python", "-m", "tests.fakes.mcp_server", "stdio"], data_dir, exact) is None
    assert check(["python", "-m", "timeit"], data_dir, exact) is not None
    assert check(["npx", "-y", "./vendored"], data_dir, exact) is None


def test_nothing_is_allowed_by_default(data_dir: str) -> None:
    allow = load_allow_list({}, data_dir)
    assert allow.prefixes == ()
    assert "not allowed" in (check(["uvx", "mcp-server-git"], data_dir, allow) or "")


def test_loaded_from_env_and_data_dir_file(data_dir: str) -> None:
    Path(data_dir, ALLOW_FILE).write_text("# operator's list\nuvx mcp-server-git  # git\n\nnpx -y\n")
    allow = load_allow_list({ENV_VAR: "python -m mcp_server_time; uvx mcp-server-git"}, data_dir)
    assert allow.prefixes == (("python", "-m", "mcp_server_time"), ("uvx", "mcp-server-git"), ("npx", "-y"))


def test_a_symlinked_allow_file_is_ignored(data_dir: str, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("bash\n")
    Path(data_dir, ALLOW_FILE).symlink_to(target)
    assert load_allow_list({}, data_dir).prefixes == ()
