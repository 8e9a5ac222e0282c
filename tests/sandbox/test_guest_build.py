"""The compiled guest's cache: native code, shared by whichever machines read the cache (a
network home, CI's emulated VM), so a copy that does not fit this wasmtime or CPU, or a cache
that cannot be written, must cost a compile, never a failure. It is shared by every
installation on the machine too: each keeps its copies, within a bound, the least recently
used removed first. Most tests compile a tiny component (milliseconds), through the same code
as the guests."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import wasmtime
import wasmtime.component as wc

from codeact_kernel.errors import GuestBuildError
from codeact_kernel.sandbox import guest_build

# A component that exports answer() -> 42: small enough to compile in milliseconds.
_TINY = """(component
  (core module $m (func (export "f") (result i32) i32.const 42)
    (func (export "version") (result i32) i32.const VERSION))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "f"))))"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEACT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CODEACT_NO_COMPILE", raising=False)
    monkeypatch.delenv("CODEACT_CACHE_MAX_MB", raising=False)
    return tmp_path / "cache"


def _tiny(path: Path, version: int | None = None) -> Path:
    """A tiny component at `path`: one at another path is another installation's guest, of
    another version (other bytes) unless `version` says which."""
    path.parent.mkdir(parents=True, exist_ok=True)
    version = version if version is not None else zlib.crc32(str(path).encode()) & 0x7FFFFFFF
    path.write_bytes(_tiny_bytes(version))
    return path


def _tiny_bytes(version: int = 0) -> bytes:
    return wasmtime.wat2wasm(_TINY.replace("VERSION", str(version)))


def _answer(engine: wasmtime.Engine, component) -> int:
    store = wasmtime.Store(engine)
    instance = wc.Linker(engine).instantiate(store, component)
    return instance.get_func(store, "answer")(store)


def _age(path: Path, seconds: float) -> None:
    """Make `path` look last used `seconds` ago (its modification time stays, as a load leaves it)."""
    os.utime(path, ns=(time.time_ns() - int(seconds * 1e9), path.stat().st_mtime_ns))


def _engine(**settings) -> wasmtime.Engine:
    config = guest_build.engine_config()
    for name, value in settings.items():
        setattr(config, name, value)
    return wasmtime.Engine(config)


def test_a_compiled_copy_is_cached_and_reused(cache, tmp_path):
    engine = _engine()
    wasm = _tiny(tmp_path / "guest.wasm")
    first = guest_build.compiled(engine, wasm, "tiny")
    [cached] = cache.glob("tiny-*.cwasm")
    stamp = cached.stat().st_mtime_ns
    again = guest_build.compiled(engine, wasm, "tiny")
    assert cached.stat().st_mtime_ns == stamp  # loaded, not compiled and written again
    assert _answer(engine, first) == 42 == _answer(engine, again)


def test_a_cached_copy_this_engine_cannot_load_is_compiled_again(cache, tmp_path, caplog):
    """As when a cache is shared with another CPU or wasmtime: the settings differ, wasmtime
    refuses the copy, and it is replaced."""
    wasm = _tiny(tmp_path / "guest.wasm")
    guest_build.compiled(_engine(epoch_interruption=True), wasm, "tiny")  # compiled code depends on it
    [cached] = cache.glob("tiny-*.cwasm")
    foreign = cached.read_bytes()
    engine = _engine()
    with caplog.at_level(logging.INFO, logger=guest_build.__name__):
        component = guest_build.compiled(engine, wasm, "tiny")
    assert "recompiling" in caplog.text and "epoch interruption" in caplog.text
    assert _answer(engine, component) == 42
    assert cached.read_bytes() != foreign


def test_two_installations_alternating_never_compile_again(cache, tmp_path, monkeypatch):
    """A clone's venv and a wheel install of two versions: their guests differ, so their keys
    do. Each keeps its compiled copy: once both are compiled, loading them in turn compiles
    nothing (CODEACT_NO_COMPILE=1 would make a compile raise)."""
    engine = _engine()
    clone, wheel = _tiny(tmp_path / "clone" / "guest.wasm"), _tiny(tmp_path / "wheel" / "guest.wasm")
    for wasm in (clone, wheel):
        guest_build.compiled(engine, wasm, "tiny")
    copies = {path: path.stat().st_mtime_ns for path in cache.glob("tiny-*.cwasm")}
    assert len(copies) == 2
    monkeypatch.setenv("CODEACT_NO_COMPILE", "1")
    for wasm in (clone, wheel, clone, wheel):
        assert _answer(engine, guest_build.compiled(engine, wasm, "tiny")) == 42
    assert {path: path.stat().st_mtime_ns for path in cache.glob("tiny-*.cwasm")} == copies


def test_installations_of_the_same_guest_share_its_compiled_copy(cache, tmp_path, monkeypatch):
    """A fresh clone of a commit compiled before (CI's, a second venv): the same bytes at
    another path and time load the copy already there, hashing the file once."""
    engine = _engine()
    guest_build.compiled(engine, _tiny(tmp_path / "clone" / "guest.wasm", version=7), "tiny")
    monkeypatch.setenv("CODEACT_NO_COMPILE", "1")
    fresh = _tiny(tmp_path / "fresh-clone" / "guest.wasm", version=7)
    assert _answer(engine, guest_build.compiled(engine, fresh, "tiny")) == 42
    assert len(list(cache.glob("tiny-*.cwasm"))) == 1
    os.utime(fresh, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: its time changes, not its bytes
    assert _answer(engine, guest_build.compiled(engine, fresh, "tiny")) == 42
    with pytest.raises(GuestBuildError, match="CODEACT_NO_COMPILE"):  # other bytes: another copy
        guest_build.compiled(engine, _tiny(fresh, version=8), "tiny")


def test_the_least_recently_used_are_removed_first_when_the_cache_is_full(cache, tmp_path, monkeypatch):
    """Recency of use, not of creation: loading a copy marks it used. Built guests (.wasm) count."""
    engine = _engine()
    a, b, c, d = (_tiny(tmp_path / name / "guest.wasm") for name in "abcd")
    copies = []  # a's, b's and c's compiled copies
    for wasm in (a, b, c):
        before = set(cache.glob("tiny-*.cwasm"))
        guest_build.compiled(engine, wasm, "tiny")
        [new] = set(cache.glob("tiny-*.cwasm")) - before
        copies.append(new)
    built = cache / "guest-0123456789abcdef.wasm"  # a build some older version left
    built.write_bytes(b"\0asm" + bytes(100))
    for age, path in zip((400, 300, 200, 100), (built, *copies)):
        _age(path, 3600 + age)  # each used more than the hour ago in which an entry is kept
    size = copies[0].stat().st_size
    monkeypatch.setenv("CODEACT_CACHE_MAX_MB", str((3 * size + size // 2) / 2**20))  # room for three
    guest_build.compiled(engine, a, "tiny")  # a loaded: now the most recently used
    guest_build.compiled(engine, d, "tiny")  # a fourth: the build and b's copy go, in that order
    assert not built.exists() and not copies[1].exists()
    assert copies[0].exists() and copies[2].exists() and len(list(cache.glob("tiny-*.cwasm"))) == 3


def test_a_copy_removed_while_a_process_has_it_loaded_keeps_working_there(cache, tmp_path, monkeypatch):
    """wasmtime maps the compiled copy it loads; removing the file (a trim by another process)
    leaves that mapping intact on Linux, which the cache relies on."""
    engine = _engine()
    first = guest_build.compiled(engine, _tiny(tmp_path / "one" / "guest.wasm"), "tiny")  # compiled, written
    loaded = guest_build.compiled(engine, tmp_path / "one" / "guest.wasm", "tiny")  # mapped from the file
    [copy] = cache.glob("tiny-*.cwasm")
    _age(copy, 7200)  # (used in the last hour, it would stay)
    monkeypatch.setenv("CODEACT_CACHE_MAX_MB", "0")
    guest_build.compiled(engine, _tiny(tmp_path / "two" / "guest.wasm"), "tiny")
    assert not copy.exists()
    assert _answer(engine, loaded) == 42 == _answer(engine, first)


def test_processes_compiling_and_trimming_at_once_all_get_their_guest(cache, tmp_path):
    """Four processes, three installations' guests, a cache with room for one or two: copies
    are written, loaded and removed under each other's feet, and every load still works."""
    wasms = [str(_tiny(tmp_path / name / "guest.wasm")) for name in "xyz"]
    program = f"""
import os, time, wasmtime, wasmtime.component as wc
from pathlib import Path
from codeact_kernel.sandbox import guest_build
engine = wasmtime.Engine(guest_build.engine_config())
for round in range(15):
    for wasm in {wasms!r}:
        for copy in guest_build.cache_dir().glob("tiny-*.cwasm"):  # as if used long ago: trims remove them
            try:
                os.utime(copy, (time.time() - 7200, copy.stat().st_mtime))
            except FileNotFoundError:
                pass
        component = guest_build.compiled(engine, Path(wasm), "tiny")
        store = wasmtime.Store(engine)
        instance = wc.Linker(engine).instantiate(store, component)
        assert instance.get_func(store, "answer")(store) == 42
"""
    size = len(wasmtime.component.Component(_engine(), _tiny_bytes()).serialize())
    env = {**os.environ, "CODEACT_CACHE_MAX_MB": str(1.5 * size / 2**20)}
    workers = [subprocess.Popen([sys.executable, "-c", program], env=env, stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    failures = [worker.stderr.read()[-2000:] for worker in workers if worker.wait(timeout=120) != 0]
    assert not failures, failures[0]
    assert len(list(cache.glob("tiny-*.cwasm"))) <= 2


def test_a_partial_write_a_dead_process_left_is_removed(cache, tmp_path):
    cache.mkdir()
    dead = cache / "tiny-0123456789abcdef-x86-64-v3.cwasm.k2j3h4"
    dead.write_bytes(b"half a guest")
    os.utime(dead, (time.time() - 7200, time.time() - 7200))
    writing = cache / "guest-0123456789abcdef.wasm.a1b2c3"  # another process, now
    writing.write_bytes(b"a guest being written")
    guest_build.compiled(_engine(), _tiny(tmp_path / "guest.wasm"), "tiny")
    assert not dead.exists() and writing.exists()


def test_a_remembered_digest_unread_for_a_month_is_removed(cache, tmp_path):
    """Every build of a guest is a new file to remember the digest of; old ones do not pile up."""
    guest_build.compiled(_engine(), _tiny(tmp_path / "guest.wasm"), "tiny")
    memos = sorted(cache.glob("*.digest"))
    assert memos  # the guest's and libwasmtime's
    old, recent = memos[0], memos[1:]
    _age(old, 31 * 86400)
    for memo in recent:
        _age(memo, 29 * 86400)
    guest_build.trim(cache / "other.cwasm")  # as after the next write
    assert not old.exists() and all(memo.exists() for memo in recent)


def test_the_bound_is_two_gigabytes_unless_set(cache, monkeypatch, caplog):
    assert guest_build.cache_limit() == 2048 * 2**20
    monkeypatch.setenv("CODEACT_CACHE_MAX_MB", "512")
    assert guest_build.cache_limit() == 512 * 2**20
    for nonsense in ("lots", "inf", "-1"):
        monkeypatch.setenv("CODEACT_CACHE_MAX_MB", nonsense)
        with caplog.at_level(logging.WARNING, logger=guest_build.__name__):
            assert guest_build.cache_limit() == 2048 * 2**20
        assert f"CODEACT_CACHE_MAX_MB={nonsense!r}" in caplog.text


def test_where_compiling_is_forbidden_a_missing_guest_is_an_error_that_says_so(cache, tmp_path, monkeypatch):
    """CI's emulated VM sets CODEACT_NO_COMPILE=1: a compile there takes minutes, so a process
    that would compile fails, naming the guest and the switch. A built guest likewise."""
    engine = _engine()
    monkeypatch.setenv("CODEACT_NO_COMPILE", "1")
    with pytest.raises(GuestBuildError, match="CODEACT_NO_COMPILE") as raised:
        guest_build.compiled(engine, _tiny(tmp_path / "guest.wasm"), "tiny")
    assert "the tiny guest" in str(raised.value) and not list(cache.glob("*.cwasm"))
    with pytest.raises(GuestBuildError, match="CODEACT_NO_COMPILE.*forbids"):
        guest_build.guest_wasm()
    monkeypatch.setenv("CODEACT_NO_COMPILE", "0")
    assert _answer(engine, guest_build.compiled(engine, tmp_path / "guest.wasm", "tiny")) == 42


def test_a_cache_that_cannot_be_written_still_gives_a_guest(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CODEACT_CACHE_DIR", str(blocker / "cache"))  # mkdir fails, even as root
    engine = _engine()
    with caplog.at_level(logging.WARNING, logger=guest_build.__name__):
        component = guest_build.compiled(engine, _tiny(tmp_path / "guest.wasm"), "tiny")
    assert _answer(engine, component) == 42
    assert "not cached" in caplog.text


def test_the_switch_reaches_a_sandbox_worker(cache, monkeypatch, capfd):
    """A worker process keeps only some of the kernel's environment: the cache's settings are
    among them, so a worker in CI's VM fails too rather than compile."""
    from codeact_kernel.errors import SandboxError
    from codeact_kernel.sandbox.worker import WorkerSandbox

    monkeypatch.setenv("CODEACT_NO_COMPILE", "1")
    with pytest.raises(SandboxError):
        WorkerSandbox("wasmtime").close()
    assert "CODEACT_NO_COMPILE=1 forbids" in capfd.readouterr().err


def test_a_compile_reports_its_progress_and_a_core_module_compiles_too(cache):
    """The scientific guest is a core module that takes minutes to compile once: the wait is shown."""
    wasm = cache.parent / "tiny.wasm"
    wasm.write_bytes(wasmtime.wat2wasm('(module (func (export "f") (result i32) i32.const 42))'))
    heard = []
    module = guest_build.compiled(_engine(), wasm, "tiny", progress=heard.append)
    assert isinstance(module, wasmtime.Module)
    assert heard[0].elapsed == 0.0 and heard[-1].done and "tiny" in heard[0].message
    assert heard[0].expected is not None
    again = []
    guest_build.compiled(_engine(), wasm, "tiny", progress=again.append)
    assert again == []  # loaded from the cache: nothing to wait for


def _folder(path: Path, size: int, used_ago: float) -> Path:
    """A cache folder (as the scientific guest's staged files or an image are) last used then."""
    (path / "lib").mkdir(parents=True)
    (path / "lib" / "data").write_bytes(bytes(size))
    stamp = time.time_ns() - int(used_ago * 1e9)
    os.utime(path, ns=(stamp, stamp))
    return path


def test_folders_count_in_the_bound_the_oldest_go_first_and_those_in_use_stay(cache, tmp_path, monkeypatch):
    """Another installation's scientific guest files stay until the bound needs their room; a
    folder or a compiled copy used in the last hour stays whatever the bound (a kernel reads
    from the folder as programs import; the copy can take minutes to make again); a folder a
    dead process left half made goes."""
    engine = _engine()
    guest_build.compiled(engine, _tiny(tmp_path / "a" / "guest.wasm"), "tiny")
    [copy] = cache.glob("tiny-*.cwasm")
    _age(copy, 3900)
    old = _folder(cache / "science-stage-0000000000000000", 1000, used_ago=7200)
    older = _folder(cache / "science-image-1111111111111111-00", 1000, used_ago=9000)
    in_use = _folder(cache / "science-image-2222222222222222-00", 1000, used_ago=60)
    dead = _folder(cache / "science-stage-3333333333333333.x1y2", 10, used_ago=7200)
    writing = _folder(cache / "science-stage-4444444444444444.z3w4", 10, used_ago=5)
    size = copy.stat().st_size
    monkeypatch.setenv("CODEACT_CACHE_MAX_MB", str((2 * size + 2500) / 2**20))  # two copies, two folders
    guest_build.compiled(engine, _tiny(tmp_path / "b" / "guest.wasm"), "tiny")
    [b_copy] = set(cache.glob("tiny-*.cwasm")) - {copy}
    assert not older.exists() and old.exists() and in_use.exists() and copy.exists()
    assert not dead.exists() and writing.exists()
    monkeypatch.setenv("CODEACT_CACHE_MAX_MB", "0")
    guest_build.compiled(engine, _tiny(tmp_path / "c" / "guest.wasm"), "tiny")
    assert not old.exists() and not copy.exists()
    assert in_use.exists() and b_copy.exists()  # used in the last hour: kept over the bound
    assert not list(cache.glob("*.removing-*"))


def test_mark_used_leaves_a_built_guests_modification_time(cache, tmp_path):
    """A built guest's modification time is part of its compiled copy's key."""
    wasm = _tiny(tmp_path / "guest.wasm")
    before = wasm.stat().st_mtime_ns
    _age(wasm, 500)
    guest_build.mark_used(wasm)
    assert wasm.stat().st_mtime_ns == before and time.time() - wasm.stat().st_atime < 60
