"""The compiled guest's cache: native code, shared by whichever machines read the cache (a
network home, CI's emulated VM), so a copy that does not fit this wasmtime or CPU, or a cache
that cannot be written, must cost a compile, never a failure."""

from __future__ import annotations

import logging

import pytest
import wasmtime

from codeact_kernel.sandbox import guest_build


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEACT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _engine(**settings) -> wasmtime.Engine:
    config = guest_build.engine_config()
    for name, value in settings.items():
        setattr(config, name, value)
    return wasmtime.Engine(config)


def _exports(component) -> set[str]:
    engine = _engine()
    return set(component.type.exports(engine))


def test_a_compiled_copy_is_cached_and_reused(cache):
    engine = _engine()
    first = guest_build.compiled(engine, guest_build.packaged_guest_wasm(), "packaged")
    [cached] = cache.glob("packaged-*.cwasm")
    stamp = cached.stat().st_mtime_ns
    again = guest_build.compiled(engine, guest_build.packaged_guest_wasm(), "packaged")
    assert cached.stat().st_mtime_ns == stamp  # loaded, not compiled and written again
    assert guest_build.EXECUTOR_INTERFACE in _exports(first) == _exports(again)


def test_a_cached_copy_this_engine_cannot_load_is_compiled_again(cache, caplog):
    """As when a cache is shared with another CPU or wasmtime: the settings differ, wasmtime
    refuses the copy, and it is replaced."""
    wasm = guest_build.packaged_guest_wasm()
    guest_build.compiled(_engine(epoch_interruption=True), wasm, "packaged")  # compiled code depends on it
    [cached] = cache.glob("packaged-*.cwasm")
    foreign = cached.read_bytes()
    with caplog.at_level(logging.INFO, logger=guest_build.__name__):
        component = guest_build.compiled(_engine(), wasm, "packaged")
    assert "recompiling" in caplog.text
    assert guest_build.EXECUTOR_INTERFACE in _exports(component)
    assert cached.read_bytes() != foreign


def test_a_new_compiled_copy_replaces_the_older_ones(cache):
    """A copy under another key (another wasmtime, an older version's settings) is never loaded
    again: compiling a new one removes it, so the cache does not grow by 36 MB each time."""
    cache.mkdir()
    stale = cache / "packaged-0123456789abcdef.cwasm"
    stale.write_bytes(b"compiled by an earlier version")
    other = cache / "guest-0123456789abcdef.cwasm"
    other.write_bytes(b"another guest")
    guest_build.compiled(_engine(), guest_build.packaged_guest_wasm(), "packaged")
    assert not stale.exists() and other.exists()
    assert len(list(cache.glob("packaged-*.cwasm"))) == 1


def test_a_cache_that_cannot_be_written_still_gives_a_guest(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CODEACT_CACHE_DIR", str(blocker / "cache"))  # mkdir fails, even as root
    with caplog.at_level(logging.WARNING, logger=guest_build.__name__):
        component = guest_build.compiled(_engine(), guest_build.packaged_guest_wasm(), "packaged")
    assert guest_build.EXECUTOR_INTERFACE in _exports(component)
    assert "not cached" in caplog.text


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
