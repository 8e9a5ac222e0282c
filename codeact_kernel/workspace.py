"""What programs start with: notebook values shared by name, and data carried from earlier programs.

Exploring is building on what came before: a DataFrame in the notebook (`%share sales`), a
table the last program computed (`by_region`). Both reach a program as data (data.py: never
a pickle), bound in its globals before it runs, a fresh copy each run, so a program can
change neither the kernel's object nor what the next program gets. Code does not carry: a
new interpreter runs each program, and only values that are data come back (RunResult.carried),
so no program can plant something that runs in a later one.

A shared name is read from the notebook's namespace at each run (a `%%python` cell may have
changed it since); a carried value is what the last program that ended without error left
under that name. A shared name wins over a carried one of the same name. Which guest a
program gets follows what it uses: a DataFrame or array it names needs the scientific guest,
so a program that names none runs in the standard guest (with the JSON values only).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import data
from .errors import DataError
from .sandbox.guests import SCIENCE, TABLE_KINDS, GuestChoice, choose_guest

Origin = Literal["shared", "carried"]
MODEL_COLUMNS = 12
"""How many of a DataFrame's columns the model is told of by name (the rest are counted)."""
MODEL_NAMES = 24
"""How many values the model is told of (the rest are counted, and %share lists them all)."""


@dataclass(frozen=True)
class Input:
    """A value a program starts with, as a person and the model are told of it (no row values)."""

    name: str
    origin: Origin
    kind: str
    """json, numpy or pandas (data.kind)."""
    description: str
    sha256: str
    """Of the data that crossed: what the transcript records."""


@dataclass(frozen=True)
class Start:
    """What one program starts with: its guest (and why), and the inputs it is given."""

    guest: GuestChoice
    blobs: dict[str, bytes]
    inputs: tuple[Input, ...]


@dataclass
class Workspace:
    shared: dict[str, int | None] = field(default_factory=dict)
    """Names shared with programs, each with how many rows the model may see (None: none)."""
    carried: dict[str, bytes] = field(default_factory=dict)
    limit: int = data.DEFAULT_LIMIT
    """The most bytes one shared value may take as data (Config.data_max_mb, CODEACT_DATA_MAX_MB)."""

    # -- %share, %unshare, %forget -----------------------------------------------------------
    def share(self, namespace: Mapping[str, Any], names: list[str], rows: int | None = None) -> list[str]:
        """Share `names` with every later program; each must exist and be data that can cross.
        Nothing changes unless every one can. Returns one line per name: what it is."""
        said = []
        for name in names:
            if not name.isidentifier() or name.startswith("_"):
                raise DataError(f"{name!r} cannot be shared: a program's names are identifiers not starting with _")
            if name not in namespace:
                raise DataError(f"{name} is not defined in the notebook: define it in a %%python cell first")
            data.encode(namespace[name], name=name, limit=self.limit)  # DataError naming it, and why (or its size)
            said.append(f"{name}: {data.describe(namespace[name])}")
        for name in names:
            self.shared[name] = rows
        return said

    def unshare(self, name: str) -> None:
        if self.shared.pop(name, False) is False:
            raise KeyError(f"{name} is not shared; shared: {', '.join(self.shared) or 'none'}")

    def forget(self) -> int:
        """Drop the carried values (`%forget`); shared names stay shared."""
        count = len(self.carried)
        self.carried.clear()
        return count

    def listing(self, namespace: Mapping[str, Any]) -> list[str]:
        """One line per value programs start with, for `%share`."""
        lines = []
        for name, rows in self.shared.items():
            what = data.describe(namespace[name]) if name in namespace else "no longer defined in the notebook"
            lines.append(f"{name} (shared{f', {rows} rows shown to the model' if rows else ''}): {what}")
        for name, blob in self.carried.items():
            if name not in self.shared:
                lines.append(f"{name} (carried from an earlier program): {describe_blob(blob)}")
        return lines

    # -- a program's start ---------------------------------------------------------------------
    def blobs(self, namespace: Mapping[str, Any]) -> dict[str, tuple[Origin, bytes]]:
        """Every value a program could start with, encoded now (a shared one from the notebook's
        current value); `DataError` names a shared value that can no longer cross."""
        out: dict[str, tuple[Origin, bytes]] = {}
        for name in self.shared:
            if name not in namespace:
                raise DataError(f"{name} is shared but no longer defined in the notebook: define it again, "
                                f"or %unshare {name}")
            out[name] = ("shared", data.encode(namespace[name], name=name, limit=self.limit))
        for name, blob in self.carried.items():
            out.setdefault(name, ("carried", blob))
        return out

    def start(self, program: str, namespace: Mapping[str, Any], setting: str, science_available: bool) -> Start:
        """The guest `program` gets and what it starts with. A DataFrame or array is given to a
        program that names it (or runs in the scientific guest anyway); JSON values to every one."""
        every = self.blobs(namespace)
        kinds = {name: data.kind(blob) for name, (_origin, blob) in every.items()}
        tables = {name: kind for name, kind in kinds.items() if kind in TABLE_KINDS}
        if tables:  # (a program is read for the names it uses only when there is a table to give)
            named = _names(program)
            tables = {name: kind for name, kind in tables.items() if name in named}
        guest = choose_guest(program, tables, setting, science_available)
        given = {name: entry for name, entry in every.items()
                 if kinds[name] not in TABLE_KINDS or guest.guest == SCIENCE}
        inputs = tuple(Input(name, origin, kinds[name], describe_blob(blob), fingerprint(blob))
                       for name, (origin, blob) in given.items())
        return Start(guest, {name: blob for name, (_origin, blob) in given.items()}, inputs)

    def carry(self, left: Mapping[str, bytes]) -> list[str]:
        """Keep what a program that ended without error left (a shared name is the notebook's);
        returns the names that are new or changed."""
        changed = [name for name in left if name not in self.shared and self.carried.get(name) != left[name]]
        for name in changed:
            self.carried[name] = left[name]
        return changed

    # -- what the model is told ------------------------------------------------------------------
    def for_model(self, namespace: Mapping[str, Any]) -> str:
        """The values a program starts with, by name with type, shape and columns (never a row,
        unless the person shared it with rows to show): what goes with the model's request."""
        lines = []
        for name, rows in self.shared.items():
            if name not in namespace:
                continue
            value = namespace[name]
            try:
                line = f"- `{name}` (shared from the notebook): {data.describe(value, columns=MODEL_COLUMNS)}"
            except DataError:
                continue
            if rows:
                line += f"; its first {rows} rows:\n" + "\n".join("    " + row for row in data.head(value, rows).splitlines())
            lines.append(line)
        for name, blob in self.carried.items():
            if name not in self.shared:
                lines.append(f"- `{name}` (left by an earlier program): {describe_blob(blob)}")
        if len(lines) > MODEL_NAMES:
            lines = lines[:MODEL_NAMES] + [f"- … and {len(lines) - MODEL_NAMES} more"]
        return "\n".join(lines)


def _names(program: str) -> set[str]:
    """The names a program reads (statically); an unreadable program reads none."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


@functools.lru_cache(maxsize=64)  # a carried value is recorded when left, and at every run it starts
def fingerprint(blob: bytes) -> str:
    """data.fingerprint (SHA-256), remembered: a value of up to 100 MB is hashed once."""
    return data.fingerprint(blob)


@functools.lru_cache(maxsize=64)
def describe_blob(blob: bytes) -> str:
    """What a value that crossed is (type, shape, columns), without its values."""
    try:
        return data.describe(data.decode(blob), columns=MODEL_COLUMNS)
    except (DataError, ImportError) as exc:  # a table, where this Python lacks pandas
        return f"{data.kind(blob)} data ({exc})"
