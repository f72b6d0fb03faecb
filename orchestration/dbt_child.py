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


def main() -> int:
    parent = os.getppid()
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            return 1
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    return cli()


if __name__ == "__main__":
    sys.exit(main())
