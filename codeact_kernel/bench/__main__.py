"""Benchmarks that print figures: `python -m codeact_kernel.bench sandbox|backends|kernel [--runs N]`.

Speed goals live here, as ratios against peers measured in the same run, not in tests.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m codeact_kernel.bench")
    parser.add_argument("suite", choices=["sandbox", "backends", "kernel"])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.suite == "sandbox":
        from .sandbox import bench_sandbox

        bench_sandbox(args.runs)
    elif args.suite == "backends":
        from .sandbox import bench_backends

        bench_backends(args.runs)
    else:
        from .kernel import bench_kernel

        bench_kernel(args.runs)


if __name__ == "__main__":
    main()
