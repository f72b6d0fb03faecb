"""`cdp-dbt`: the dbt command line, ended by the kernel when the run that started it dies.

dbt runs as a child process of the run. Stopped normally, the run asks dbt to finish (an
interrupt forwarded by dagster-dbt), but a run that is killed outright cannot: its dbt kept
running, writing the warehouse and holding its lock while the next run started. Linux's
parent-death signal needs no help from the dying parent. Kept free of heavy imports so dbt
starts as fast as through its own script.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux; kept across exec, so a
    parent may also call it between fork and exec: `preexec_fn`)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main() -> int:
    parent = os.getppid()
    die_with_parent()
    if sys.platform == "linux" and os.getppid() != parent:  # died before the signal was armed
        return 1
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    return cli()


if __name__ == "__main__":
    sys.exit(main())
