"""Approval policies, pure: what may run without a human, read from the program itself."""

from __future__ import annotations

import pytest

from codeact_kernel.approval import Decision, Scan, allowable, covered, guard, route, scan
from codeact_kernel.views import render


def test_scan_finds_literal_tool_names_in_order():
    found = scan("a = call_tool('list_users')\nfor u in a:\n    call_tool('get_orders', u['id'])\n"
                 "call_tool('list_users')")
    assert found == Scan(("list_users", "get_orders"), False)
    assert found.describe() == "list_users, get_orders"


@pytest.mark.parametrize("program", [
    "name = 'x'\ncall_tool(name)",              # the name is computed
    "f = call_tool\nf('delete_everything')",     # call_tool is passed around
    "list(map(call_tool, ['a']))",
    "def broken(:",                             # unreadable: assume anything
])
def test_scan_marks_what_it_cannot_read_as_dynamic(program):
    assert scan(program).dynamic


SENSITIVE = {"delete_everything"}


@pytest.mark.parametrize(("policy", "program", "recorded", "expected"), [
    ("ask", "call_tool('a')", None, "ask"),
    ("auto", "call_tool('a')", None, "run"),
    ("auto", "call_tool('delete_everything')", None, "ask"),
    ("auto", "n = 'delete_' + 'everything'\ncall_tool(n)", None, "ask"),
    ("reject", "call_tool('a')", None, "show-only"),
    ("recorded", "call_tool('a')", "person", "run"),
    ("recorded", "call_tool('a')", None, "ask"),
    # It ran unasked before: what auto would ask about, recorded asks about too.
    ("recorded", "call_tool('a')", "policy", "run"),
    ("recorded", "call_tool('delete_everything')", "policy", "ask"),
    ("recorded", "call_tool('delete_everything')", "person", "run"),
])
def test_route(policy, program, recorded, expected):
    """Pure policy: whether a person is needed, never which frontend asks (views/ decide that,
    and a headless run fails where a person is needed: tests/test_kernel.py)."""
    assert route(policy, found=scan(program), always_ask=SENSITIVE, recorded=recorded) == expected


def test_auto_without_sensitive_tools_runs_dynamic_calls():
    assert route("auto", found=scan("call_tool(x)"), always_ask=set()) == "run"


def test_a_decision_records_exactly_what_runs():
    approved = Decision("edited", "print(2)\n")
    assert approved.runs and approved.sha256 == Decision("approved", "print(2)\n").sha256
    assert approved.sha256 != Decision("approved", "print(2)").sha256
    record = render.decision(approved).markdown
    assert record.startswith("**Approved after editing** at ") and approved.sha256[:16] in record
    rejected = Decision("rejected", "print(2)", "too risky")
    shown = render.decision(rejected).markdown
    assert not rejected.runs and "sha256" not in shown and "reason: too risky" in shown


def test_the_guard_refuses_an_always_tool_only_where_no_person_approved():
    tools = {"delete_everything": lambda: "deleted", "lookup": lambda: "found"}
    unasked = guard(tools, Decision("auto", "..."), SENSITIVE)
    assert unasked["lookup"]() == "found"
    with pytest.raises(PermissionError, match="delete_everything is marked approval='always'"):
        unasked["delete_everything"]()
    for kind in ("approved", "edited", "recorded"):
        assert guard(tools, Decision(kind, "..."), SENSITIVE)["delete_everything"]() == "deleted"
    with pytest.raises(PermissionError, match="same text ran unasked before"):
        guard(tools, Decision("recorded-unasked", "..."), SENSITIVE)["delete_everything"]()


def test_a_session_allowance_covers_programs_that_name_only_allowed_tools():
    assert covered(scan("call_tool('a')\ncall_tool('b')"), {"a", "b", "c"})
    assert not covered(scan("call_tool('a')\ncall_tool('d')"), {"a", "b"})
    assert not covered(scan("n = 'a'\ncall_tool(n)"), {"a"})  # chosen at run time: asked about
    assert not covered(scan("print(1)"), {"a"})  # calls nothing: asked about, as before any allowance
    assert route("ask", found=scan("call_tool('a')"), always_ask=(), allowed={"a"}) == "run"
    assert allowable(scan("call_tool('a')\ncall_tool('delete_everything')"), SENSITIVE) == ()
    assert allowable(scan("call_tool('a')"), SENSITIVE) == ("a",)


def test_an_allowed_run_may_call_only_the_allowed_tools():
    tools = {"a": lambda: "A", "b": lambda: "B"}
    guarded = guard(tools, Decision("allowed", "...", allow=("a",)), ())
    assert guarded["a"]() == "A"
    with pytest.raises(PermissionError, match="b is not among the tools allowed for this session"):
        guarded["b"]()
