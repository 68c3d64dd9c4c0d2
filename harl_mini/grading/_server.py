"""Imported only by the grader's check server (the multiprocessing forkserver, as a preload).

It makes the server die with the grader: if the grader is killed (even by SIGKILL), Linux
sends the server SIGKILL, and the server's check processes, which die with the server,
follow. If the grader died while the server was still importing, the server exits now.
Nothing else imports this module.
"""

import os

from harl_mini.grading.sandbox import die_with_parent

die_with_parent()
if str(os.getppid()) != os.environ.get("HARL_MINI_GRADER_PID", str(os.getppid())):
    os._exit(0)
