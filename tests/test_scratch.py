"""Temporary folders: a process's are removed when it ends, or, if it was killed, by the next.

Each case runs real processes with the system's temporary folder set to the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

MAKE = """
import sys
from codeact_kernel import scratch
for kind in ("output", "worker", "science"):
    (scratch.folder(kind) / "data").write_text("x")
print(scratch._process_folder(), flush=True)
if sys.argv[1] == "wait":
    sys.stdin.read()
"""


def _start(tmp_path, how: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", MAKE, how], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def test_a_process_that_ends_removes_its_folders(tmp_path):
    process, folder = _start(tmp_path, "end")
    assert process.wait(timeout=60) == 0
    assert folder.startswith(str(tmp_path / f"codeact-{process.pid}-"))
    assert not os.path.exists(folder)


def test_a_killed_processs_folders_are_removed_by_the_next_while_a_running_ones_stay(tmp_path):
    killed, killed_folder = _start(tmp_path, "wait")
    running, running_folder = _start(tmp_path, "wait")
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=60)
        assert len(os.listdir(killed_folder)) == 3  # left behind
        other = tmp_path / "codeact-output-x1"  # not a process's folder: not this module's to remove
        other.mkdir()
        target = tmp_path / "someone's files"
        target.mkdir()
        (target / "keep").write_text("x")
        (tmp_path / f"codeact-{killed.pid}-link").symlink_to(target)  # named as the dead one's: a link, kept
        later, later_folder = _start(tmp_path, "end")
        assert later.wait(timeout=60) == 0
        assert not os.path.exists(killed_folder)
        assert len(os.listdir(running_folder)) == 3 and other.exists() and (target / "keep").exists()
    finally:
        running.kill()
        running.wait(timeout=60)
