"""Temporary folders: every one a process makes lies in a folder of its own, removed at exit.

A kernel makes many (each run's /output, a sandbox worker's folder, the scientific guest's
private files, MCP servers' logs), and a kernel that is killed (a restart that would not wait,
the OOM killer) removes none of them: a day of this project's tests once left 1,382 empty
/output folders in /tmp, 290 of the scientific guest's and 118 of workers'. So each process
puts its folders in one, ``codeact-<pid>-*`` in the system's temporary folder, and the first
folder a process makes also removes those of processes that are no longer running.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

_PREFIX = "codeact-"  # then the process's pid, a dash, mkdtemp's random part
_lock = threading.Lock()
_root: tuple[int, Path] | None = None  # (pid, folder): a forked child makes its own


def folder(kind: str) -> Path:
    """A new private folder (mode 0700) named after `kind`, gone when this process ends."""
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_process_folder()))


def _process_folder() -> Path:
    global _root
    with _lock:
        pid = os.getpid()
        if _root is None or _root[0] != pid or not _root[1].is_dir():
            _remove_orphans()
            path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{pid}-"))
            atexit.register(shutil.rmtree, path, True)
            _root = (pid, path)
        return _root[1]


def _remove_orphans() -> None:
    """Remove the folders of this user's processes that are no longer running."""
    me = os.getuid() if hasattr(os, "getuid") else None
    for path in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        pid = path.name.removeprefix(_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            info = path.lstat()  # a symlink is not a folder here
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or (me is not None and info.st_uid != me):
            continue
        if not _running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send Ctrl-C there: keep the folder
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # running, as another user
        return True
    return True
