"""Register the kernelspec: `python -m codeact_kernel install [--user | --sys-prefix | --prefix P]`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

KERNEL_NAME = "codeact"
DISPLAY_NAME = "CodeAct"
LOGOS = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


def kernel_json() -> dict:
    return {
        "argv": [sys.executable, "-m", "codeact_kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "codeact",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codeact_kernel install",
                                     description="Install the CodeAct kernelspec.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="in this Python environment (e.g. a venv)")
    where.add_argument("--prefix", help="under this prefix")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(kernel_json(), indent=2))
        for logo in LOGOS:  # the launcher's and the notebook header's icon
            shutil.copy(Path(__file__).with_name("resources") / logo, tmp)
        prefix = sys.prefix if args.sys_prefix else args.prefix
        path = KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=args.user, prefix=prefix)
    print(f"Installed the {DISPLAY_NAME} kernel ({KERNEL_NAME}) in {path}")
    return 0
