"""Sets resource limits, then becomes the plugin: `python -I launcher.py --cpu S --as BYTES --nofile N
-- argv...`. Run as a script by chatbus's interpreter (stdlib only, imports nothing of chatbus): the
MCP SDK's stdio_client takes no preexec function, so the limits are set here, after the fork, in the
process that then execs the plugin (limits survive exec)."""

from __future__ import annotations

import os
import resource
import sys

LIMITS = {"--cpu": resource.RLIMIT_CPU, "--as": resource.RLIMIT_AS, "--nofile": resource.RLIMIT_NOFILE}


def main(argv: list[str]) -> None:
    if "--" not in argv:
        sys.exit("usage: launcher.py [--cpu S] [--as BYTES] [--nofile N] -- argv...")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    for flag, value in zip(options[::2], options[1::2], strict=True):
        limit = LIMITS[flag]
        wanted = int(value)
        _, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(limit, (wanted, wanted))  # the hard limit too: the plugin cannot raise it
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
