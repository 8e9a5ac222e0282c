"""Build the fuller guest component once, and cache it.

The packaged Hyperlight guest lacks modules model-written programs use (datetime,
statistics, heapq, string, textwrap). So we build our own guest with componentize-py from
`guest/executor.py`, against the *same* WIT interfaces: they are read, at build time, from
the installed `python-sandbox.wasm` (through wasmtime's component type API), never copied
from another repository. A program therefore sees the same `call_tool` contract on both
backends.

Builds take about 10 s and land in the user's cache, keyed by everything that changes the
result, so a kernel pays for it once per installation. The cache holds the builds and compiled
copies of every installation and version that uses it (a clone's venv and a wheel install are
two; a compiled copy is keyed on the guest's bytes, so those with the same guest share it),
within a bound on disk (`cache_limit()`); when a new one is written, the least recently
used go first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import GuestBuildError

GUEST_SOURCE = Path(__file__).with_name("guest") / "executor.py"
WORLD = "codeact-guest"
TOOLS_INTERFACE = "hyperlight:sandbox/tools"
EXECUTOR_INTERFACE = "hyperlight:sandbox/executor"
_log = logging.getLogger(__name__)


# The cache's default bound. One installation's guests take about 90 MB today (the packaged
# guest compiled, 36 MB; ours built, 20 MB, and compiled, 36 MB); a scientific guest adds about
# 300 MB or more compiled, which takes a minute and a half to compile again. 2 GB holds about
# five installations with it, twenty without.
CACHE_MAX_MB = 2048
# A partial write (a temporary file beside its target) this old was left by a process that died.
_PARTIAL_AGE_S = 3600
# A cache entry used this recently stays in a trim (see `trim`).
_IN_USE_S = 3600
# A file's remembered digest (`_digest`) unread this long is removed in a trim: it belongs to a
# guest file that is gone or was rebuilt (each build is a new key), or costs one hash to make
# again. Reading it keeps its access time within a day (Linux's relatime).
_DIGEST_AGE_S = 30 * 86400
# The cache's settings are facts of the machine: every process that may load a guest (a kernel,
# a sandbox worker) takes them along, whatever else of the environment it leaves behind.
CACHE_SETTINGS = ("CODEACT_CACHE_DIR", "CODEACT_CACHE_MAX_MB", "CODEACT_NO_COMPILE")


def cache_dir() -> Path:
    """Where built guests and compiled modules live (CODEACT_CACHE_DIR overrides)."""
    root = os.environ.get("CODEACT_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codeact-kernel"


def cache_limit() -> int:
    """Bytes the cache's guests may take (CODEACT_CACHE_MAX_MB, default CACHE_MAX_MB).

    Every `*.wasm` and `*.cwasm` directly in `cache_dir()` counts: each can be made again. The
    one just written is kept even if alone it is larger.
    """
    text = os.environ.get("CODEACT_CACHE_MAX_MB", "").strip()
    if text:
        try:
            megabytes = float(text)
            if megabytes >= 0:
                return int(megabytes * 2**20)
        except (ValueError, OverflowError):  # "lots", "inf"
            pass
        _log.warning("CODEACT_CACHE_MAX_MB=%r is not a number of megabytes: the cache keeps %d MB", text,
                     CACHE_MAX_MB)
    return CACHE_MAX_MB * 2**20


def _no_compiling(what: str) -> None:
    """Raise instead of building or compiling a guest where CODEACT_NO_COMPILE=1 (CI's emulated VM).

    There a compile takes 7 to 10 minutes, and the cache it reads (the host's) cannot keep the
    result, so every process would pay again: any process that would compile must fail instead.
    """
    if os.environ.get("CODEACT_NO_COMPILE", "").strip() not in ("", "0"):
        raise GuestBuildError(
            f"{what}, and CODEACT_NO_COMPILE=1 forbids making it here. Make it where that cache is "
            "written, with the same installation (./dev hyperlight does so on the host for the guests it "
            "knows, before the emulated VM starts), or unset CODEACT_NO_COMPILE.")


def packaged_guest_wasm() -> Path:
    """The `.wasm` of Hyperlight's packaged Python guest (its interface is our contract).

    Found without importing `python_guest`, whose import copies a 44 MB file.
    """
    from importlib.util import find_spec

    spec = find_spec("python_guest")
    if spec is None or not spec.submodule_search_locations:
        raise GuestBuildError("hyperlight-sandbox-python-guest is not installed: "
                              "pip install hyperlight-sandbox-python-guest==0.8.0")
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "python-sandbox.wasm"


def _build_key() -> str:
    """Changes when the executor, this builder, componentize-py or the packaged guest do.

    Keyed on stat() of those files: asking importlib.metadata for versions, or hashing
    them, costs more than the whole rest of a kernel start.
    """
    from importlib.util import find_spec

    componentize = find_spec("componentize_py")
    files = (GUEST_SOURCE, Path(__file__), componentize.origin if componentize else None, packaged_guest_wasm())
    return _stat_key(path for path in files if path)


def _stat_key(paths: Iterable[str | Path]) -> str:
    """A short key that changes when any of these files is replaced, resized or touched."""
    text = ";".join(f"{path}:{st.st_size}:{st.st_mtime_ns}" for path in paths for st in (os.stat(path),))
    data = text.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def guest_wasm() -> Path:
    """Path of the fuller guest component, building it on first use."""
    target = cache_dir() / f"guest-{_build_key()}.wasm"
    if target.exists():
        mark_used(target)
    else:
        _no_compiling(f"the guest component {target.name} is not built in {target.parent}")
        build_guest(target)
        trim(target)
    return target


def derive_wit() -> str:
    """WIT for the tools import and executor export, read from the packaged guest."""
    import wasmtime

    engine = wasmtime.Engine(engine_config())
    component = _type_only_component(engine)
    imports = component.type.imports(engine)
    exports = component.type.exports(engine)
    tools = _interface_wit("tools", imports[TOOLS_INTERFACE].ty, engine)
    executor = _interface_wit("executor", exports[EXECUTOR_INTERFACE].ty, engine)
    return (
        "package hyperlight:sandbox;\n\n"
        f"{tools}\n{executor}\n"
        f"world {WORLD} {{\n  import tools;\n  export executor;\n}}\n"
    )


def _type_only_component(engine):  # type: ignore[no-untyped-def]
    """The packaged guest, compiled (its type is all we need from it)."""
    return compiled(engine, packaged_guest_wasm(), "packaged")


# What x86-64 CPUs have beyond x86-64-v3 (AVX2, FMA, BMI), which cranelift would otherwise
# use wherever it finds them. CPython compiled to wasm gains nothing measurable from them.
_BEYOND_X86_64_V3 = ("has_avx512f", "has_avx512vl", "has_avx512dq", "has_avx512bitalg", "has_avx512vbmi",
                     "has_avx512vnni", "has_avx_vnni")


def engine_config():  # type: ignore[no-untyped-def]
    """A wasmtime Config whose compiled code runs on any x86-64-v3 CPU, not just this one.

    So a compiled guest can be cached where several machines read it: a shared home, or an
    emulated VM that sees its host's files (CI's, whose CPU has AVX2 but not AVX-512).
    """
    import wasmtime

    config = wasmtime.Config()
    if _code() == "x86-64-v3":
        for flag in _BEYOND_X86_64_V3:
            config.cranelift_flag_set(flag, "false")
    return config


def _code() -> str:
    """What compiled code `engine_config()` makes: in the cache key, so a copy compiled with
    other settings (by an older version, for this CPU alone) is never taken for a portable one."""
    import platform

    machine = platform.machine().lower()
    return "x86-64-v3" if machine in ("x86_64", "amd64") else machine or "native"


@dataclass(frozen=True)
class Progress:
    """How far a slow, one-time step has got, for a kernel to show instead of a silent wait."""

    message: str
    elapsed: float
    """Seconds since the step began."""
    expected: float | None = None
    """A rough estimate of the step's whole length in seconds, where there is one."""
    done: bool = False


ProgressCallback = Callable[[Progress], None]
_PROGRESS_EVERY = 1.0  # seconds between reports while a compile runs


def compiled(engine, wasm: Path, name: str, progress: ProgressCallback | None = None):  # type: ignore[no-untyped-def]
    """`wasm` compiled for `engine` (made from `engine_config()`), from the cache if it is there.

    `wasm` is a component or a core module (its header says which); what comes back is a
    `wasmtime.component.Component` or a `wasmtime.Module` to match. The copy is keyed on what
    the `.wasm` file and libwasmtime hold (`_file_key`): installations with the same guest
    share one, others keep theirs side by side, so two alternating never compile again,
    and a fresh clone of a commit compiled before compiles nothing. One `name` must always
    come with the same engine settings. wasmtime checks a cached copy before loading it; one it
    refuses (another wasmtime, or a CPU without x86-64-v3) is compiled again. When the cache
    cannot be written (read-only), the compiled guest is used from memory and the reason
    logged; where CODEACT_NO_COMPILE=1, compiling raises instead. A compile calls `progress`
    about once a second (the scientific guest takes minutes, once per machine).
    """
    import wasmtime

    kind = _kind(wasm)
    cached = cache_dir() / f"{name}-{_file_key(wasm)}-{_code()}.cwasm"
    why = "none is there"
    if cached.exists():
        try:
            loaded = kind.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError as exc:  # refused, or removed since exists() by another process
            why = " ".join(str(exc).split())
            _log.info("recompiling %s: %s", cached.name, why)
        else:
            mark_used(cached)
            return loaded
    _no_compiling(f"the {name} guest ({wasm}) has no compiled copy in {cached.parent} that this "
                  f"wasmtime and CPU load ({why})")
    component = _compile(kind, engine, wasm, name, progress)
    try:
        _atomic_write(cached, component.serialize())
    except OSError as exc:
        _log.warning("the compiled guest is not cached (%s): every process compiles it again", exc)
        return component
    trim(cached)
    return component


def mark_used(path: Path) -> None:
    """Record a use of a cache entry, which `trim` removes the oldest of first: a file's in its
    access time (its modification time stays: a built guest's is part of its compiled copy's
    key), a folder's in both its times. A cache that cannot be written (read-only, as in CI's
    emulated VM, or another user's) records nothing, and loads as well.
    """
    try:
        if path.is_dir():
            os.utime(path)
        else:
            os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
    except OSError:
        pass


def trim(keep: Path) -> None:
    """Remove the least recently used entries of `keep`'s cache until it fits its bound.

    An entry is a guest (`*.wasm`, `*.cwasm`) or a folder of one (the scientific guest's staged
    files and images); `keep` was just written. The small files remembering guest files'
    digests are removed once unread for `_DIGEST_AGE_S`, whatever the bound. Called after a
    write, never on a load, so a kernel start stays cheap. Removing a file another process has mapped is safe on Linux and
    macOS, and relied on here: wasmtime maps a compiled copy it loads, and the mapping keeps the
    data after the name is gone. (On Windows the removal fails while the file is mapped; it is
    left for a later trim.) An entry used in the last `_IN_USE_S` stays, whatever the bound: a
    folder because a kernel reads from it as programs import, a compiled copy because making it
    again can take minutes (the scientific guest's), which a burst of installations' folders
    must not cost a running one. Two processes trimming at once may both remove an entry: one
    of them finds it gone.
    """
    from .host import dir_size

    directory, limit, now = keep.parent, cache_limit(), time.time()
    total, candidates = 0, []
    try:
        names = list(directory.iterdir())
    except OSError:
        return
    for path in names:
        try:
            info = path.lstat()
        except OSError:  # removed meanwhile
            continue
        folder = stat.S_ISDIR(info.st_mode)
        if folder:
            partial = "." in path.name  # made in a temporary folder beside it, or being removed
        elif stat.S_ISREG(info.st_mode):
            if path.suffix == ".digest":
                if now - info.st_atime > _DIGEST_AGE_S:
                    path.unlink(missing_ok=True)
                continue
            partial = ".wasm." in path.name or ".cwasm." in path.name  # _atomic_write's temporary files
            if not (partial or path.suffix in (".wasm", ".cwasm")):
                continue
        else:
            continue
        if partial:
            if now - info.st_mtime > _PARTIAL_AGE_S:  # left by a process that died
                _remove(path, folder)
            continue  # else another process is writing it
        size = dir_size(path) if folder else info.st_size
        total += size
        used = info.st_mtime_ns if folder else info.st_atime_ns  # (mark_used sets these)
        if path == keep or now - used / 1e9 < _IN_USE_S:
            continue
        candidates.append((used, size, path, folder))
    for _, size, path, folder in sorted(candidates):
        if total <= limit:
            break
        try:
            _remove(path, folder)
        except OSError as exc:
            _log.info("could not remove %s from the guest cache: %s", path.name, exc)
            continue
        total -= size
        _log.info("removed %s from the guest cache, the least recently used (the cache keeps %d MB; "
                  "CODEACT_CACHE_MAX_MB)", path.name, limit // 2**20)


def _remove(path: Path, folder: bool) -> None:
    if not folder:
        path.unlink(missing_ok=True)
        return
    if "." not in path.name:  # renamed first, so no process finds it half removed
        gone = path.with_name(f"{path.name}.removing-{os.getpid()}")
        os.rename(path, gone)
        path = gone
    shutil.rmtree(path, ignore_errors=True)


def _kind(wasm: Path):  # type: ignore[no-untyped-def]
    """wasmtime's class for what `wasm` holds: its header's version says component or module."""
    import wasmtime
    import wasmtime.component as wc

    with open(wasm, "rb") as f:
        header = f.read(8)
    if header[:4] != b"\0asm":
        raise GuestBuildError(f"{wasm} is not WebAssembly")
    return wasmtime.Module if header[4:8] == b"\x01\0\0\0" else wc.Component


def _compile(kind, engine, wasm: Path, name: str, progress: ProgressCallback | None):  # type: ignore[no-untyped-def]
    """Compile, reporting to `progress` from another thread while wasmtime works (it releases
    the GIL): a compile cannot say how far it has got, so the report is the time so far beside
    a rough estimate from the module's size and this machine's cores."""
    if progress is None:
        return kind.from_file(engine, str(wasm))
    # Measured for the scientific guest (104 MB): 85 to 160 s on 2 busy cores.
    expected = os.path.getsize(wasm) / 2**20 * 2.0 / max(os.cpu_count() or 1, 1)
    message = f"compiling the {name} guest for this machine (once; cached in {cache_dir()})"
    start = time.monotonic()
    finished = threading.Event()

    def report() -> None:
        while not finished.wait(_PROGRESS_EVERY):
            progress(Progress(message, time.monotonic() - start, expected))

    reporter = threading.Thread(target=report, name="codeact-compile-progress", daemon=True)
    progress(Progress(message, 0.0, expected))
    reporter.start()
    try:
        return kind.from_file(engine, str(wasm))
    finally:
        finished.set()
        reporter.join()
        progress(Progress(message, time.monotonic() - start, expected, done=True))


def _file_key(path: Path) -> str:
    """Key a compiled module on what is in the .wasm and in libwasmtime, so installations with
    the same guest and wasmtime (a clone's venv and a wheel, a fresh clone of the same commit)
    share one compiled copy, and compile it once."""
    import wasmtime

    digests = ";".join(_digest(Path(p)) for p in [path, *sorted(Path(wasmtime.__file__).parent.glob("*/*wasmtime*"))])
    return hashlib.sha256(digests.encode()).hexdigest()[:16]


def _digest(path: Path) -> str:
    """The file's SHA-256 (16 hex digits), remembered in the cache under its stat() key: a
    kernel start reads that small file instead of hashing (the scientific guest is 100 MB)."""
    memo = cache_dir() / f"{_stat_key([path])}.digest"
    try:
        known = memo.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        known = ""
    if len(known) == 16 and all(c in "0123456789abcdef" for c in known):
        return known
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    digest = sha.hexdigest()[:16]
    try:
        _atomic_write(memo, digest.encode("ascii"))
    except OSError:  # a read-only cache: hashed again by the next process
        pass
    return digest


def _atomic_write(path: Path, data: bytes) -> None:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _interface_wit(name: str, instance_type, engine) -> str:  # type: ignore[no-untyped-def]
    import wasmtime.component as wc

    types: list[str] = []
    funcs: list[str] = []
    names: dict[int, str] = {}
    for item_name, extern in instance_type.exports(engine).items():
        ty = extern.ty
        if isinstance(ty, wc.FuncType):
            params = ", ".join(f"{p}: {_type_wit(t, names)}" for p, t in ty.params)
            result = f" -> {_type_wit(ty.result, names)}" if ty.result is not None else ""
            funcs.append(f"  {item_name}: func({params}){result};")
        elif isinstance(ty, wc.RecordType):
            fields = ",\n".join(f"    {f}: {_type_wit(t, names)}" for f, t in ty.fields)
            types.append(f"  record {item_name} {{\n{fields},\n  }}")
            names[_type_identity(ty)] = item_name
        else:
            raise GuestBuildError(f"unexpected item {item_name!r} in interface {name}")
    body = "\n".join(types + funcs)
    return f"interface {name} {{\n{body}\n}}\n"


def _type_identity(ty) -> int:  # type: ignore[no-untyped-def]
    """Records are matched by their field layout (enough for these two interfaces)."""
    return hash(tuple((f, type(t).__name__) for f, t in ty.fields))


_PRIMITIVES = {
    "Bool": "bool", "S8": "s8", "S16": "s16", "S32": "s32", "S64": "s64",
    "U8": "u8", "U16": "u16", "U32": "u32", "U64": "u64",
    "F32": "f32", "F64": "f64", "Char": "char", "String": "string",
}


def _type_wit(ty, names: dict[int, str]) -> str:  # type: ignore[no-untyped-def]
    import wasmtime.component as wc

    kind = type(ty).__name__
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if isinstance(ty, wc.ListType):
        return f"list<{_type_wit(ty.element, names)}>"
    if isinstance(ty, wc.OptionType):
        return f"option<{_type_wit(ty.payload, names)}>"
    if isinstance(ty, wc.ResultType):
        ok = _type_wit(ty.ok, names) if ty.ok is not None else "_"
        err = _type_wit(ty.err, names) if ty.err is not None else None
        return f"result<{ok}, {err}>" if err else f"result<{ok}>"
    if isinstance(ty, wc.RecordType):
        named = names.get(_type_identity(ty))
        if named:
            return named
    raise GuestBuildError(f"cannot express the WIT type {kind} of the packaged guest")


def build_guest(target: Path) -> None:
    """Run componentize-py on guest/executor.py; raises GuestBuildError with the log."""
    import subprocess
    import tempfile

    from importlib.util import find_spec

    if find_spec("componentize_py") is None:
        raise GuestBuildError("componentize-py is not installed: pip install componentize-py==0.25.1")
    # Its entry point, run by this interpreter: found wherever the package is importable, which
    # is not always beside a `componentize-py` script (a venv that borrows another's packages).
    exe = [sys.executable, "-c", "import sys; from componentize_py import script; "
                                 "sys.argv[0] = 'componentize-py'; sys.exit(script())"]
    with tempfile.TemporaryDirectory(prefix="codeact-guest-") as tmp:
        work = Path(tmp)
        (work / "wit").mkdir()
        (work / "wit" / "world.wit").write_text(derive_wit())
        shutil.copy(GUEST_SOURCE, work / "executor.py")
        out = work / "guest.wasm"
        cmd = [*exe, "-d", str(work / "wit"), "-w", WORLD, "componentize",
               "-p", str(work), "executor", "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
        if proc.returncode != 0 or not out.exists():
            raise GuestBuildError("componentize-py could not build the guest", proc.stderr[-4000:])
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, out.read_bytes())
