"""`python -m codeact_kernel.sandbox [PROGRAM.py]`: run a program in the sandbox this machine gets.

Without a file it runs the orders workload (36 tool calls). It prints which backend was
chosen and why, the program's output, and what the run cost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..bench import orders
from .selection import BACKENDS, choose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codeact_kernel.sandbox")
    parser.add_argument("program", nargs="?", type=Path, help="a Python file (default: the orders workload)")
    parser.add_argument("--backend", choices=BACKENDS, default=None)
    args = parser.parse_args(argv)
    source = args.program.read_text() if args.program else orders.PROGRAM
    choice = choose(args.backend)
    print(f"sandbox: {choice.sandbox.name} ({choice.reason})")
    print("-" * 60)
    result = choice.sandbox.run(source, orders.TOOLS, on_output=lambda _s, text: print(text, end=""))
    print("-" * 60)
    if result.error:
        print(result.error, file=sys.stderr)
    print(f"{len(result.tool_calls)} tool calls, {result.duration * 1000:.1f} ms in the sandbox")
    choice.sandbox.close()
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
