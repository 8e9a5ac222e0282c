"""Benchmarks that print figures: `python -m codeact_kernel.bench sandbox|backends|science|kernel|wiring|growth [--runs N]`.

Speed goals live here, as ratios against peers measured in the same run, not in tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m codeact_kernel.bench")
    parser.add_argument("suite", choices=["sandbox", "backends", "science", "kernel", "wiring", "growth"])
    parser.add_argument("--runs", type=int, help="default: 30, or 3 for wiring")
    parser.add_argument("--against", type=Path, metavar="TREE",
                        help="kernel: also run another checkout of this package (e.g. a git worktree of an "
                        "older commit), alternating, and print each figure beside it")
    parser.add_argument("--compile", action="store_true",
                        help="science: also time the once-per-machine compile (minutes), into a cache of its own")
    wiring = parser.add_argument_group("wiring", "CodeAct against tool calling (offline unless --model)")
    wiring.add_argument("--model", help="your model's name; without it an oracle plays the ideal model")
    wiring.add_argument("--base-url", help="its OpenAI-compatible server (default: OPENAI_BASE_URL); "
                        "the key comes from OPENAI_API_KEY")
    wiring.add_argument("--tasks", nargs="+", metavar="TASK", help="default: every task in bench/tasks.py")
    wiring.add_argument("--json", type=Path, help="write the figures here")
    wiring.add_argument("--plot", type=Path, help="write a PNG of turns, tokens and time here")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.suite == "wiring" else 30
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.suite == "sandbox":
        from .sandbox import bench_sandbox

        bench_sandbox(args.runs)
    elif args.suite == "backends":
        from .sandbox import bench_backends

        bench_backends(args.runs)
    elif args.suite == "science":
        from .science import bench_science

        bench_science(args.runs, compile_too=args.compile)
    elif args.suite == "kernel":
        from .kernel import bench_kernel

        bench_kernel(args.runs, against=args.against)
    elif args.suite == "growth":
        from .growth import bench_growth

        bench_growth()
    else:
        from .wiring import bench_wiring

        bench_wiring(args.runs, model=args.model, base_url=args.base_url, names=args.tasks,
                     json_path=args.json, plot_path=args.plot)


if __name__ == "__main__":
    main()
