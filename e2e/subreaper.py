#!/usr/bin/env python3
"""subreaper.py CMD [ARG...] — run CMD as a child of a child subreaper.

This VM's PID 1 never reaps orphans, and every caller under test daemonizes
something (containerd shims, conmon, dockerd's containerd). Run below this
process, those orphans are re-parented here instead of PID 1 and are reaped
as they exit, so none stays a zombie.

The exit status is CMD's. When CMD has exited, every process still below
this one (orphans that CMD's cleanup missed) is listed on stderr, killed by
PID with SIGKILL and reaped, and the exit status is then at least 1: a suite
that leaves processes behind fails.
"""
import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def children(pid):
    """Direct children of pid, from /proc/<pid>/task/*/children."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(p) for p in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def descendants(pid):
    seen, todo = [], children(pid)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += children(p)
    return seen


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: subreaper.py CMD [ARG...]")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"subreaper.py: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    os.environ["E2E_SUBREAPER"] = str(os.getpid())
    main_pid = os.fork()
    if main_pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)
    # forward INT/TERM to the suite, which cleans up and exits
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda n, _f: os.kill(main_pid, n))
    status = None
    while status is None:
        try:
            pid, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == main_pid:
            status = os.waitstatus_to_exitcode(st)
    if status is None:
        status = 1
    elif status < 0:
        status = 128 - status
    # give daemons stopped during cleanup a moment to finish exiting
    deadline = time.time() + 3
    left = descendants(os.getpid())
    while left and time.time() < deadline:
        reap_all()
        time.sleep(0.1)
        left = descendants(os.getpid())
    if left:
        print(f"subreaper.py: FAIL: {len(left)} process(es) left behind by the suite:", file=sys.stderr)
        for p in left:
            print(f"  {p}: {cmdline(p)}", file=sys.stderr)
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        status = status or 1
    reap_all()
    sys.exit(status)


if __name__ == "__main__":
    main()
