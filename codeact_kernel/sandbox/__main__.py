"""`python -m codeact_kernel.sandbox [PROGRAM.py]`: run a program in the sandbox this machine gets.

Without a file it runs the orders workload (36 tool calls). It prints which backend and which
guest were chosen and why, the program's output, and what the run cost. `--compile` makes the
guests ready and exits: the standard one, and the scientific one (compiled once per machine,
about a minute and a half on two cores), so ./dev can do it up front.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..bench import orders
from .guest_build import Progress
from .guests import GUESTS
from .selection import BACKENDS, choose


def _print_progress(progress: Progress) -> None:
    """One line per report, rewritten in place on a terminal."""
    expected = f" of about {progress.expected:.0f} s" if progress.expected else ""
    line = f"{progress.message}: {progress.elapsed:.0f} s{expected}" + (" (done)" if progress.done else "")
    if sys.stdout.isatty():
        print("\r" + line, end="\n" if progress.done else "", flush=True)
    elif progress.done or progress.elapsed == 0.0 or int(progress.elapsed) % 15 == 0:
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codeact_kernel.sandbox")
    parser.add_argument("program", nargs="?", type=Path, help="a Python file (default: the orders workload)")
    parser.add_argument("--backend", choices=BACKENDS, default=None)
    parser.add_argument("--guest", choices=GUESTS, default=None, help="default: CODEACT_GUEST, else auto")
    parser.add_argument("--compile", action="store_true",
                        help="make the guests ready (the scientific one too, unless --guest standard) and exit")
    args = parser.parse_args(argv)
    choice = choose(args.backend, guest=args.guest)
    router = choice.sandbox
    try:
        if args.compile:  # quiet when everything is already made: ./dev runs it every time
            from .science.artifacts import available

            if router.setting != "standard" and (missing := available()) is not None:  # type: ignore[attr-defined]
                print(f"the scientific guest cannot be made here: {missing}")
            elif router.setting != "standard":  # type: ignore[attr-defined]
                router.prepare_science(_print_progress)  # type: ignore[attr-defined]
            return 0
        print(f"sandbox: {router.name} ({choice.reason})")
        source = args.program.read_text() if args.program else orders.PROGRAM
        guest = router.choose(source)  # type: ignore[attr-defined]
        print(f"guest: {guest.guest} ({guest.reason})")
        print("-" * 60)
        router.progress = _print_progress  # type: ignore[attr-defined]
        result = router.run(source, orders.TOOLS, on_output=lambda _s, text: print(text, end=""))
        print("-" * 60)
        if result.error:
            print(result.error, file=sys.stderr)
        figures = f", {len(result.figures)} figures" if result.figures else ""
        print(f"{len(result.tool_calls)} tool calls{figures}, {result.duration * 1000:.1f} ms in {result.backend}")
        return 0 if result.ok else 1
    finally:
        router.close()


if __name__ == "__main__":
    sys.exit(main())
