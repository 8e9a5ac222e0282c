"""Recorded turns: an append-only JSONL file, and replaying a model from it.

Every prompt cell appends one line (flushed and fsynced, never rewritten), so a notebook's
record of which programs were approved survives a crash. The same file can stand in for
the model (`replay:PATH`): a turn is found by the hash of the conversation before it and
its prompt, so replaying a notebook reproduces it without a network call.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .approval import RanBy
from .errors import ReplayMiss
from .model import Turn
from .protocol import CallAction
from .record import TurnRecord

DEFAULT_NAME = "codeact-transcript.jsonl"
_AS_THE_MODEL_HEARD = {"approved": "ran", "auto": "ran", "recorded": "ran", "recorded-unasked": "ran",
                       "allowed": "ran", "rejected-by-policy": "rejected"}


def default_path(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """Beside the notebook: `NOTEBOOK.codeact.jsonl` when Jupyter says which notebook, else the cwd."""
    explicit = environ.get("CODEACT_TRANSCRIPT")
    if explicit:
        return Path(explicit).expanduser()
    notebook = environ.get("JPY_SESSION_NAME")  # set by jupyter_server for the notebook's kernel
    if notebook and notebook.endswith(".ipynb"):
        return Path(notebook).with_suffix(".codeact.jsonl")
    return Path.cwd() / DEFAULT_NAME


def conversation_hash(history: Iterable[Turn]) -> str:
    """A stable hash of the conversation so far, as the model saw it.

    Who approved a program that ran (a person, `auto`, `recorded`) is not part of it, so a
    notebook recorded with one policy replays under another: every unedited program that ran
    is "ran", and a policy's refusal a rejection (its reason says which).
    """
    turns = []
    for turn in history:
        fields = asdict(turn)
        fields["decision"] = _AS_THE_MODEL_HEARD.get(fields["decision"], fields["decision"])
        if not fields["denied"]:  # as before calls could be denied: older recordings still match
            del fields["denied"]
        turns.append(fields)
    canonical = json.dumps(turns, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Transcript:
    """Appends one JSON object per line to `path`; never rewrites what is there."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: TurnRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"recorded_at": datetime.now(timezone.utc).isoformat(), **record.to_json()},
                          ensure_ascii=False, default=str)
        with open(self.path, "a+b") as f:
            # After a crash mid-write the file ends inside a line: end it, so that this
            # record is a line of its own rather than the tail of a torn one.
            torn = f.tell() > 0 and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n"
            f.write((("\n" if torn else "") + line + "\n").encode())
            f.flush()
            os.fsync(f.fileno())

    def __iter__(self) -> Iterator[TurnRecord]:
        return iter(records(self.path))


def read(path: Path) -> list[dict[str, Any]]:
    """Every record in a transcript. A line that is not a whole record (the kernel killed
    mid-write) is skipped with a warning that names it; what was recorded before it stands."""
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                warnings.warn(f"{path}, line {number}: skipped, not a whole record (the kernel was "
                              "stopped while writing it?)", TranscriptWarning, stacklevel=2)
    return records


def records(path: Path) -> list[TurnRecord]:
    """Every record in a transcript, typed."""
    return [TurnRecord.from_json(record) for record in read(path)]


class TranscriptWarning(UserWarning):
    """A transcript line could not be read and was skipped."""


def approved_programs(paths: Iterable[Path]) -> dict[str, RanBy]:
    """SHA-256 of every program that ran in these transcripts, each with who let it run: a
    "person", or a "policy" (auto, or a session allowance) that ran it unasked. Under
    `recorded` only a person's approval lets a program call a tool marked approval='always'."""
    found: dict[str, RanBy] = {}
    for path in paths:
        for r in records(path):
            if r.ran_sha256 and r.decision in ("approved", "edited", "recorded"):
                found[r.ran_sha256] = "person"
            elif r.ran_sha256 and r.decision in ("auto", "allowed", "recorded-unasked"):
                found.setdefault(r.ran_sha256, "policy")
    return found


def recorded_calls(paths: Iterable[Path], program_sha256: str) -> dict[tuple[str, str], tuple[CallAction, str | None]]:
    """A person's decisions on calls asked about in this program (approval='each-call'), by
    (tool, arguments' SHA-256): "allow" or "deny", with the reason. Allowed for the rest of a
    run counts as allowed for each call it let through. Denials nobody made (headless, an
    interrupt) are not decisions, and are asked again."""
    found: dict[tuple[str, str], tuple[CallAction, str | None]] = {}
    for path in paths:
        for r in records(path):
            if r.ran_sha256 != program_sha256:
                continue
            for call in r.calls:
                if call.by in ("person", "recorded", "run"):
                    found[(call.tool, call.args_sha256)] = ("deny" if call.decision == "deny" else "allow", call.reason)
    return found


class Replay:
    """Answers prompts from a transcript instead of a model."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise ReplayMiss(f"the replay transcript {path} does not exist")
        self.path = path
        self._replies: dict[tuple[str, str], TurnRecord] = {}
        for record in records(path):
            self._replies.setdefault((record.conversation, record.prompt), record)

    def reply(self, conversation: str, prompt: str) -> TurnRecord:
        """The recorded turn for this point of the conversation; a miss names the prompt."""
        record = self._replies.get((conversation, prompt))
        if record is None:
            known = sum(1 for c, p in self._replies if p == prompt)
            detail = ("it is there, but after a different conversation (earlier cells changed?)"
                      if known else "no turn with this prompt was recorded")
            raise ReplayMiss(f"{self.path.name} has no reply for the prompt {prompt!r}: {detail}. "
                             "Run it against a model (%model NAME) to record it.")
        return record
