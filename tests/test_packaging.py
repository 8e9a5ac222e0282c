"""What `pip install codeact-kernel` brings, and what a clone's set-up leaves behind.

A wheel built from a clean copy of the sources carries the prebuilt notebook extension where
JupyterLab and Notebook 7 look, so the user's machine needs no Node.js. The build runs jlpm on
extension/ (hatch-jupyter-builder), as a release build would: about a minute, with the npm
registry. And `./dev`'s install runs again and again in one clone: each command starts with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARE = "share/jupyter/labextensions/codeact-kernel"


def _clean_copy(destination: Path) -> Path:
    """The tracked sources, copied: what a fresh clone has, and nothing an earlier build made."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout, to copy exactly the tracked sources")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    assert not (destination / "codeact_kernel" / "labextension").exists()
    return destination


def _wheel(source: Path, dist: Path) -> list[str]:
    """Build a wheel of `source` as pip does for `pip install .`; the names in it."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = dist.glob("codeact_kernel-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def _extension_in(names: list[str]) -> list[str]:
    """The extension's files in a wheel, relative to its folder (each as often as it is there)."""
    data = next(name.split(SHARE)[0] for name in names if SHARE in name)
    return [name[len(data) + len(SHARE) + 1:] for name in names if name.startswith(data + SHARE)]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_wheel_from_a_clean_copy_carries_the_prebuilt_extension(tmp_path):
    source = _clean_copy(tmp_path / "src")
    names = _wheel(source, tmp_path / "dist")
    extension = set(_extension_in(names))
    assert {"package.json", "install.json", "static/style.js"} <= extension
    assert any(name.startswith("static/remoteEntry.") for name in extension)
    assert {"schemas/codeact-kernel/card.json", "schemas/codeact-kernel/cells.json"} <= extension
    [wheel] = (tmp_path / "dist").glob("codeact_kernel-*.whl")
    package = json.loads(zipfile.ZipFile(wheel).read(next(name for name in names if name.endswith(f"{SHARE}/package.json"))))
    assert package["name"] == "codeact-kernel" and package["jupyterlab"]["_build"]["load"].startswith("static/")
    install = json.loads(zipfile.ZipFile(wheel).read(next(name for name in names if name.endswith(f"{SHARE}/install.json"))))
    assert install["packageName"] == "codeact-kernel"
    # and the kernel's own files beside it
    assert {"codeact_kernel/sandbox/guest/executor.py", "codeact_kernel/prompts/codeact.md",
            "codeact_kernel/resources/logo-64x64.png"} <= set(names)


def _venv_seeing_this_one(path: Path) -> None:
    """A new venv that also sees this venv's packages (one line in a .pth file), so `./dev`'s pip
    finds every dependency installed and downloads none. Its own site-packages come first: the
    copy's editable install is the codeact_kernel it imports."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    theirs = subprocess.run([str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    (Path(theirs) / "zz_codeact_test_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_set_up_runs_again_and_again_in_one_clone(tmp_path):
    """`./dev install` (the start of every ./dev command) three times in one clone, the extension
    changed and built each time; then a wheel of what they left behind. The third install used to
    fail: the second had written install.json into codeact_kernel/labextension (pip installs the
    extension through the link `jupyter-builder develop` makes), and the build then had two files
    for one path in the wheel."""
    source = _clean_copy(tmp_path / "clone")
    _venv_seeing_this_one(source / ".venv")
    built = source / "codeact_kernel" / "labextension"
    env = {name: value for name, value in os.environ.items() if name not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for attempt in range(1, 4):
        changed = time.time()
        os.utime(source / "extension" / "src" / "index.ts", (changed, changed))  # the editable build runs jlpm again
        run = subprocess.run([str(source / "dev"), "install"], cwd=source, env=env, capture_output=True, text=True)
        assert run.returncode == 0, f"install {attempt} failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
        assert (built / "static" / "style.js").stat().st_mtime >= changed - 1, f"install {attempt} built no extension"
        link = source / ".venv" / SHARE
        assert link.is_symlink() and link.resolve() == built.resolve()  # the development link, for rebuilds

    extension = _extension_in(_wheel(source, tmp_path / "dist"))
    assert extension.count("install.json") == 1 and len(extension) == len(set(extension))
    assert {"package.json", "static/style.js"} <= set(extension)
