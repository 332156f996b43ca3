#!/usr/bin/env python3
"""Runs one command and records its wall time and peak RSS, for scripts/bench.sh. Linux only.

    measure.py RESULT_FILE COMMAND [ARG...]

Writes `<seconds> <peak RSS in KiB> <exit code>` to RESULT_FILE and exits with the command's code.
The command's stdout and stderr are passed through; its stdin is /dev/null.

Why not simply subprocess + getrusage(RUSAGE_CHILDREN)? Python starts a child with vfork, and at
exec the kernel folds the high-water RSS of the memory the child shared, Python's own (~14 MB),
into the child's ru_maxrss. Every command would then seem to need at least ~14 MB. So this wrapper
makes itself a child subreaper, starts `/bin/sh -c '"$@" & exec printf ... "$!"'`, and lets that
small shell fork the command, report its pid, and go away. The command, orphaned, is re-parented to this process, which reaps it
with wait4 and so reads the rusage of exactly that command (and of the children it waited for). Its
RSS floor is then the shell's (~1 MB), not Python's. The clock runs from just before the shell is
started until the command is reaped.
"""

import ctypes
import fcntl
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    result_file, command = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"measure.py: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")

    # The shell reports the command's pid on a pipe, so that other orphans (the command's own
    # background children, if any) are not mistaken for it. It does so by exec'ing printf, so that
    # it never gets the chance to reap the command itself (dash reaps finished background jobs
    # opportunistically, e.g. at exit).
    pid_read, pid_write = os.pipe()  # both close-on-exec
    # Only the copy at fd 3 may reach the shell: a stray copy of the write end would keep the pipe
    # open for as long as the command (or anything it leaves behind) runs.
    high = fcntl.fcntl(pid_write, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(pid_write)
    start = time.perf_counter()
    shell = os.posix_spawn(
        "/bin/sh", ["sh", "-c", '"$@" 3>&- & exec printf "%s\\n" "$!" >&3', "sh", *command], os.environ,
        file_actions=[(os.POSIX_SPAWN_DUP2, high, 3)],
    )
    os.close(high)
    with os.fdopen(pid_read) as pipe:
        target = int(pipe.read().strip() or -1)
    measured = None
    shell_done = False
    while measured is None or not shell_done:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            sys.exit("measure.py: the command was reaped by someone else; its rusage is lost")
        if pid == target:
            measured = (time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
        elif pid == shell:
            shell_done = True
            if os.waitstatus_to_exitcode(status) != 0 or target < 0:
                sys.exit(f"measure.py: the shell that starts the command failed ({status})")
    seconds, max_rss_kib, code = measured
    with open(result_file, "w") as out:
        out.write(f"{seconds:.6f} {max_rss_kib} {code}\n")
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
