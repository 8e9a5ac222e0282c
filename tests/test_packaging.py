"""What `pip install codeact-kernel` brings: a wheel built from a clean copy of the sources
carries the prebuilt notebook extension where JupyterLab and Notebook 7 look, so the user's
machine needs no Node.js. The build runs jlpm on extension/ (hatch-jupyter-builder), as a
release build would: about a minute, with the npm registry."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARE = "share/jupyter/labextensions/codeact-kernel"


@pytest.mark.timeout(600)
def test_a_wheel_from_a_clean_copy_carries_the_prebuilt_extension(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout, to copy exactly the tracked sources")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    source = tmp_path / "src"
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    assert not (source / "codeact_kernel" / "labextension").exists()

    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]

    [wheel] = (tmp_path / "dist").glob("codeact_kernel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = next(name.split(SHARE)[0] for name in names if SHARE in name)
    extension = {name[len(data) + len(SHARE) + 1:] for name in names if name.startswith(data + SHARE)}
    assert {"package.json", "install.json", "static/style.js"} <= extension
    assert any(name.startswith("static/remoteEntry.") for name in extension)
    assert {"schemas/codeact-kernel/card.json", "schemas/codeact-kernel/cells.json"} <= extension
    package = json.loads(zipfile.ZipFile(wheel).read(f"{data}{SHARE}/package.json"))
    assert package["name"] == "codeact-kernel" and package["jupyterlab"]["_build"]["load"].startswith("static/")
    # and the kernel's own files beside it
    assert {"codeact_kernel/sandbox/guest/executor.py", "codeact_kernel/prompts/codeact.md",
            "codeact_kernel/resources/logo-64x64.png"} <= set(names)
