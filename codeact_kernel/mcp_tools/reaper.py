"""Runs one stdio MCP server as its child, and takes the server down when the kernel dies.

    python -I -S reaper.py KERNEL_PID LOG MAX_BYTES -- COMMAND [ARGS...]

Why: the SDK's stdio client starts a server in a session of its own (so a Ctrl-C in a
terminal does not reach it), which also means the kernel's process group, the one
jupyter_client kills when it kills a kernel, does not hold it. A kernel that is killed
(SIGKILL, an OOM kill, a restart that runs out of patience) would leave the server running.
So the kernel starts each server through this script, which stays as the server's parent,
in the server's group, and

- asks Linux to signal it when the thread that started it ends (PR_SET_PDEATHSIG; the
  kernel's MCP thread, which lives as long as the kernel), and checks its parent every
  second where there is no such call;
- then kills its whole process group: the server and anything the server started;
- passes SIGTERM, SIGINT and SIGHUP on to the server (the SDK's own shutdown), and exits
  with the server's status when the server exits;
- copies the server's stderr into its LOG, which it keeps within MAX_BYTES: past that, the
  older half goes (a chatty server's debug output would otherwise fill the disk over a long
  session, and the newest lines are the ones that say why a server stopped).

It gives its stdin and stdout to the server and closes its own copies, so the kernel sees
the server's end of the pipes close exactly when the server's does. Standard library only,
started with -I -S: it must start in milliseconds and never see the kernel's packages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

_PR_SET_PDEATHSIG = 1


def _signal_on_parent_death(signum: int) -> None:
    """Linux: have the kernel send `signum` when this process's parent thread ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the polling below still catches it, within a second


def _kill_group(*_: object) -> None:
    """The kernel is gone: the server and everything it started go too (this process last)."""
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _pump(source: int, log: str, most: int) -> None:
    """The server's stderr into LOG until the server closes it. Always drained, whatever
    happens to the log (a full disk): a server blocked on a full pipe would hang."""
    try:
        out = open(log, "ab", buffering=0)  # noqa: SIM115 - held while the server runs
    except OSError:
        out = None
    while chunk := os.read(source, 1 << 16):
        if out is None:
            continue
        try:
            out.write(chunk)
            if os.fstat(out.fileno()).st_size > most:
                _keep_tail(log, most // 2)
        except OSError:
            pass
    if out is not None:
        out.close()


def _keep_tail(log: str, keep: int) -> None:
    """Rewrite LOG in place (other writers append to it) as its last `keep` bytes, from a line start."""
    with open(log, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(size - keep, 0))
        tail = f.read()
        tail = tail[tail.find(b"\n") + 1:]
        f.seek(0)
        f.write(b"[codeact: older output removed, the log keeps its last %d KB]\n" % (keep // 1024) + tail)
        f.truncate()


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[4] != "--":
        sys.stderr.write("usage: reaper.py KERNEL_PID LOG MAX_BYTES -- COMMAND [ARGS...]\n")
        return 2
    kernel, log, most, command = int(argv[1]), argv[2], int(argv[3]), argv[5:]
    signal.signal(signal.SIGUSR1, _kill_group)
    _signal_on_parent_death(signal.SIGUSR1)
    if os.getppid() != kernel:  # the kernel died before the line above took effect
        _kill_group()
    try:
        # The server dies with this process too, should something kill it alone.
        child = subprocess.Popen(command, stderr=subprocess.PIPE,
                                 preexec_fn=lambda: _signal_on_parent_death(signal.SIGKILL))
    except OSError as exc:
        sys.stderr.write(f"cannot start the MCP server {command[0]!r}: {exc}\n")
        return 127
    sys.stderr.write(f"[codeact: MCP server started, pid {child.pid}, process group {os.getpgrp()}]\n")
    sys.stderr.flush()
    assert child.stderr is not None
    pump = threading.Thread(target=_pump, args=(child.stderr.fileno(), log, most), daemon=True)
    pump.start()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the server holds the pipes now; our copies would hide its EOF
    os.dup2(devnull, 1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda received, _frame: child.send_signal(received))
    while True:
        try:
            status = child.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            if os.getppid() != kernel:
                _kill_group()
    pump.join(2.0)  # its last words, unless something it started still holds its stderr
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
