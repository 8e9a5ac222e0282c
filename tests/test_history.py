"""The conversation within a budget: newest whole, older condensed, oldest left out, named ones kept."""

from __future__ import annotations

from codeact_kernel.history import condense, describe, fit
from codeact_kernel.model import Turn, build_messages


def turn(n: int, output_lines: int = 12) -> Turn:
    program = f"totals_{n} = call_tool('sales', region={n})\nprint(totals_{n})"
    output = "\n".join(f"row {i} of cell {n}: {i * n:>8}" for i in range(output_lines))
    return Turn(f"sales for region {n}", f"Here it is.\n```python\n{program}\n```", program, output, None, "auto")


def test_everything_fits_whole_in_a_roomy_budget():
    history = [turn(n) for n in range(3)]
    window = fit(history, "next", 10_000)
    assert window.forms == ("whole",) * 3 and window.turns == tuple(history)


def test_a_long_conversation_keeps_the_newest_whole_and_stays_within_budget():
    history = [turn(n) for n in range(40)]
    window = fit(history, "next", 1500)
    assert window.forms[-1] == "whole" and window.forms[0] == "left out"
    assert window.tokens <= 1500
    order = {"whole": 2, "condensed": 1, "left out": 0}
    assert [order[f] for f in window.forms] == sorted(order[f] for f in window.forms)  # older never gets more
    assert 0 < window.forms.count("condensed") and window.left_out > 20
    assert fit(history, "next", None).forms == ("whole",) * 40


def test_a_turn_the_prompt_names_is_never_left_out():
    history = [turn(n) for n in range(40)]
    assert fit(history, "next", 1500).forms[3] == "left out"
    assert fit(history, "compare totals_3 with the latest", 1500).forms[3] == "condensed"
    wrote = Turn("write it", "```python\nopen('/output/q3.csv', 'w').write('x')\n```",
                 "open('/output/q3.csv', 'w').write('x')", "", None, "auto")
    assert fit([wrote] + history, "plot q3.csv.", 1500).forms[0] == "condensed"


def test_condensed_keeps_what_it_did_not_how():
    brief = condense(turn(7, output_lines=200))
    assert "```" not in brief.reply and "[program: 2 lines; called sales]" in brief.reply
    assert "characters left out" in brief.output and len(brief.output) < 400
    assert brief.prompt == "sales for region 7"


def test_the_request_keeps_its_stable_part_first_and_says_what_was_left_out():
    history = [turn(n) for n in range(40)]
    window = fit(history, "next", 1500)
    messages = build_messages("INSTRUCTIONS", "TOOLS", window.turns, "next", left_out=window.left_out)
    assert messages[0] == {"role": "system", "content": "INSTRUCTIONS\n\n## Tools\n\nTOOLS"}
    assert messages[1]["content"].startswith(f"({window.left_out} earlier turns of this notebook left out")
    assert messages[-1]["content"].endswith("Next request:\nnext")
    assert "history budget 1,500 tokens" in describe(window, 1500)
