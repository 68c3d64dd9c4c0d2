"""Start a notebook kernel under limits: ``python _launch.py MEMORY_BYTES -- KERNEL ARGV...``.

Run as a plain script (it imports nothing from harl_mini, so it starts in milliseconds):
it caps the address space at MEMORY_BYTES (Linux; a 50 GB allocation then fails with
MemoryError instead of swapping the machine to death), asks Linux to SIGKILL the kernel
when the grader dies (PR_SET_PDEATHSIG, so no orphan kernel keeps spinning), and replaces
itself with the kernel.
"""

import os
import signal
import sys


def main() -> None:
    limit = int(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    try:
        import resource

        if limit > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
