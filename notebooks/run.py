"""The main job: run every example notebook through the CodeAct kernel, offline, and show what happened.

Each notebook replays its recorded transcript (no network, no API key) under the `recorded`
approval policy. Executed copies are written to executed-notebooks/; each prompt cell is
printed with its program and output.

    python notebooks/run.py [NAME ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from codeact_kernel.sandbox.guest_build import CACHE_SETTINGS

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "executed-notebooks"  # outside notebooks/, so nbval does not collect them


def _text(output: nbformat.NotebookNode, expected: bool = False) -> str:
    """What a console shows of an output: streams as printed, every display's text/plain (the
    kernel writes each one to say what its Markdown does), an error's name and message."""
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        note = "    (expected: this cell shows how the kernel refuses)\n" if expected else ""
        return f"{output.ename}: {output.evalue}\n{note}"
    plain = output.get("data", {}).get("text/plain", "")
    return "" if plain.startswith("<IPython") or "application/vnd.jupyter.widget-view+json" in output.get("data", {}) \
        else plain.rstrip("\n") + "\n"


def show(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        source = cell.source.strip()
        if cell.cell_type != "code" or (source.startswith("%") and not source.startswith("%%python")):
            continue
        if source.startswith("%%python"):
            if cell.outputs:  # Python cells that show something, e.g. using a program's result
                lines = source.splitlines()
                print("\n>>> " + (source if len(lines) <= 6 else f"{lines[0]}  ({len(lines) - 1} lines)"))
                for output in cell.outputs:
                    text = _text(output)
                    print(text if not text or text.endswith("\n") else text + "\n", end="")
            continue
        print(f"\n>>> {source}")
        expected = "raises-exception" in cell.metadata.get("tags", [])
        for output in cell.outputs:
            print(_text(output, expected), end="")


def run(name: str) -> bool:
    nb = nbformat.read(HERE / f"{name}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["CODEACT_TRANSCRIPT"] = str(Path(scratch) / "transcript.jsonl")
        client = NotebookClient(nb, kernel_name="codeact", timeout=120, allow_errors=True,
                                resources={"metadata": {"path": str(HERE)}})
        client.execute()
    OUT.mkdir(exist_ok=True)
    nbformat.write(nb, OUT / f"{name}.ipynb")
    print(f"\n=== {name}.ipynb " + "=" * (52 - len(name)))
    show(nb)
    unexpected = [c for c in nb.cells if c.cell_type == "code"
                  and any(o.output_type == "error" for o in c.outputs)
                  and "raises-exception" not in c.metadata.get("tags", [])]
    return not unexpected


def main(names: list[str]) -> int:
    for key in [k for k in os.environ if k.startswith(("OPENAI_", "CODEACT_")) and k not in CACHE_SETTINGS]:
        del os.environ[key]  # the examples replay their transcripts: no model settings apply
    names = names or sorted(p.stem for p in HERE.glob("*.ipynb"))
    failed = [name for name in names if not run(name)]
    out = OUT.relative_to(HERE.parent)
    print(f"\n{len(names) - len(failed)} of {len(names)} notebooks ran as recorded; executed copies in {out}/")
    print(f"open them in JupyterLab: .venv/bin/jupyter lab {out}/   (the CodeAct kernel is their kernel)")
    print("use a real model: in a notebook, replace the `%model replay ...` cell with %model NAME "
          "(set OPENAI_API_KEY, and --base-url URL for a local server)")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
