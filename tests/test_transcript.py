"""Transcripts: append-only records, conversation hashes, replay and recorded approvals."""

from __future__ import annotations

import json

import pytest

from codeact_kernel.errors import ReplayMiss
from codeact_kernel.model import Turn
from codeact_kernel.record import TurnRecord
from codeact_kernel.transcript import (
    Replay,
    Transcript,
    TranscriptWarning,
    approved_programs,
    conversation_hash,
    default_path,
    read,
)


def test_append_only_one_line_per_turn(tmp_path):
    path = tmp_path / "t.jsonl"
    t = Transcript(path)
    t.append(TurnRecord.from_json({"prompt": "a", "decision": "approved", "ran_sha256": "x"}))
    first = path.read_text()
    t.append(TurnRecord.from_json({"prompt": "b", "decision": "rejected"}))
    assert path.read_text().startswith(first)  # never rewritten
    assert [r["prompt"] for r in read(path)] == ["a", "b"]
    assert all("recorded_at" in r for r in read(path))


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "t.jsonl"
    Transcript(path).append(TurnRecord.from_json({"prompt": "a"}))
    with open(path, "a") as f:
        f.write('{"prompt": "b", "rep')  # the kernel died mid-write
    with pytest.warns(TranscriptWarning, match="line 2: skipped, not a whole record"):
        assert [r["prompt"] for r in read(path)] == ["a"]
    Transcript(path).append(TurnRecord.from_json({"prompt": "c"}))  # the next turn is a line of its own, not the torn one's tail
    with pytest.warns(TranscriptWarning, match="line 2"):
        assert [r["prompt"] for r in read(path)] == ["a", "c"]


def test_conversation_hash_ignores_who_approved():
    ran = Turn("p", "r", "print(1)", "1\n", None, "approved")
    auto = Turn("p", "r", "print(1)", "1\n", None, "auto")
    edited = Turn("p", "r", "print(1)", "1\n", None, "edited")
    assert conversation_hash([ran]) == conversation_hash([auto])
    assert conversation_hash([ran]) != conversation_hash([edited])
    assert conversation_hash([]) != conversation_hash([ran])


def test_replay_finds_by_conversation_and_prompt(tmp_path):
    path = tmp_path / "t.jsonl"
    Transcript(path).append(TurnRecord.from_json({"prompt": "weather?", "conversation": conversation_hash([]), "reply": "R1"}))
    replay = Replay(path)
    assert replay.reply(conversation_hash([]), "weather?").reply == "R1"
    with pytest.raises(ReplayMiss, match="'other'.*no turn with this prompt"):
        replay.reply(conversation_hash([]), "other")
    later = conversation_hash([Turn("x", "y", None, "", None, "no-code")])
    with pytest.raises(ReplayMiss, match="after a different conversation"):
        replay.reply(later, "weather?")
    with pytest.raises(ReplayMiss, match="does not exist"):
        Replay(tmp_path / "missing.jsonl")


def test_approved_programs(tmp_path):
    path = tmp_path / "t.jsonl"
    t = Transcript(path)
    for decision, sha in (("approved", "a"), ("edited", "b"), ("auto", "c"), ("rejected", None),
                          ("recorded", "d"), ("allowed", "e"), ("recorded-unasked", "f"), ("auto", "a")):
        t.append(TurnRecord.from_json({"decision": decision, "ran_sha256": sha}))
    assert approved_programs([path, tmp_path / "none.jsonl"]) == {
        "a": "person", "b": "person", "c": "policy", "d": "person", "e": "policy", "f": "policy"}


def test_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_path({}) == tmp_path / "codeact-transcript.jsonl"
    assert str(default_path({"JPY_SESSION_NAME": "/w/nb/quickstart.ipynb"})) == "/w/nb/quickstart.codeact.jsonl"
    assert str(default_path({"CODEACT_TRANSCRIPT": "/x/t.jsonl"})) == "/x/t.jsonl"
    json.dumps(str(default_path({})))
