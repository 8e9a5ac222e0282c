"""Exploring data through a real kernel: notebook values shared by name, data carried from one
program to the next, figures inline, a DataFrame handed back; and what refuses, by name.

The scientific guest runs the programs that need numpy and pandas (the session compiles it
once per machine, as ./dev does up front).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import kernel_env

SALES = '''%%python
import numpy as np, pandas as pd
sales = pd.DataFrame({
    "region": pd.Series(["EU", "US", "EU", "APAC"], dtype="category"),
    "month": pd.to_datetime(["2026-01-31", "2026-01-31", "2026-02-28", "2026-02-28"]).tz_localize("Europe/Paris"),
    "revenue": [120.5, 99.0, 80.25, 42.0],
    "units": pd.array([3, None, 2, 1], dtype="Int64"),
})
secret_row_value = "Atlantis-7731"
sales.loc[3, "region"] = "APAC"
'''


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


@pytest.fixture
def kernel(openai_server, start_kernel, tmp_path):
    fe = start_kernel(kernel_env(openai_server, CODEACT_APPROVAL="auto", CODEACT_TRANSCRIPT=str(tmp_path / "t.jsonl")),
                      widgets=False)
    fe.transcript = tmp_path / "t.jsonl"
    assert fe.execute(SALES).status == "ok"
    return fe


def said(cell) -> str:  # noqa: ANN001
    """All a cell printed: a magic's refusal is IPython's UsageError on stderr."""
    return cell.stdout() + cell.stdout("stderr") + str(cell.error() or "")


def _run(fe, openai_server, code: str, prompt: str = "go"):  # noqa: ANN001, ANN202
    openai_server.enqueue(fence(code))
    return fe.execute(prompt, timeout=300)


def test_shared_data_reaches_programs_as_a_copy_and_the_model_sees_its_schema_only(kernel, openai_server):
    listed = kernel.execute("%share sales").stdout()
    assert "shared sales: DataFrame 4 × 4" in listed and "month: datetime64[us, Europe/Paris]" in listed
    cell = _run(kernel, openai_server, "print(sales.dtypes.to_dict())\nprint(sales['units'].isna().sum())\n"
                                       "sales['revenue'] = 0\nsales.drop(index=0, inplace=True)")
    assert cell.status == "ok", cell.error()
    assert "Europe/Paris" in cell.stdout() and "Int64" in cell.stdout() and cell.stdout().endswith("1\n")
    assert "runs in the scientific guest" in cell.markdown() and "`sales` (shared)" in cell.markdown()
    # the kernel's object is untouched
    check = kernel.execute("%%python\nprint(len(sales), sales['revenue'].sum())")
    assert check.stdout() == "4 341.75\n"
    system, *_, request = openai_server.requests[-1].body["messages"]
    # what the program starts with goes with the request; the system message stays the same bytes
    assert "`sales` (shared from the notebook): DataFrame 4 × 4" in request["content"]
    assert "units: Int64" in request["content"] and "sales" not in system["content"]
    assert "120.5" not in request["content"] and "EU" not in request["content"]  # no row values
    assert "numpy, pandas" in system["content"]  # the packages the guest in use has


def test_rows_are_shown_to_the_model_only_when_asked(kernel, openai_server):
    kernel.execute("%share sales --rows 2")
    _run(kernel, openai_server, "print(len(sales))")
    request = openai_server.requests[-1].body["messages"][-1]["content"]
    assert "120.5" in request and "42.0" not in request  # the first 2 rows, not the rest


def test_data_carries_from_cell_to_cell_and_code_does_not(kernel, openai_server):
    kernel.execute("%share sales")
    first = _run(kernel, openai_server,
                 "by_region = sales.groupby('region', observed=True)['revenue'].sum()\n"
                 "top = {'region': str(by_region.idxmax()), 'revenue': float(by_region.max())}\n"
                 "def helper():\n    return 'planted'\n"
                 "class Spy:\n    pass\n"
                 "import json")
    assert first.status == "ok", first.error()
    assert "for the next program" in first.markdown() and "by_region" in first.markdown()
    second = _run(kernel, openai_server, "print(top['region'], round(by_region['EU'], 2))\n"
                                         "print([name in globals() for name in ('helper', 'Spy', 'json')])")
    assert second.status == "ok", second.error()
    assert second.stdout() == "EU 200.75\n[False, False, False]\n"
    request = openai_server.requests[-1].body["messages"][-1]["content"]
    assert "`by_region` (left by an earlier program): Series revenue 3" in request and "`top`" in request
    # what went in is recorded: names and the SHA-256 of the data
    record = json.loads(kernel.transcript.read_text().splitlines()[-1])
    assert {i["name"] for i in record["inputs"]} >= {"sales", "by_region", "top"}
    assert all(len(i["sha256"]) == 64 for i in record["inputs"])
    # a standard-library program gets the JSON values, and runs in the standard guest
    third = _run(kernel, openai_server, "print(top['revenue'])")
    assert third.stdout() == "200.75\n" and "runs in the standard guest" in third.markdown()
    assert "carried value" in kernel.execute("%forget").stdout()
    fourth = _run(kernel, openai_server, "print('top' in globals(), len(sales))")
    assert fourth.stdout() == "False 4\n"  # carried values forgotten, the shared one stays


def test_a_failing_or_interrupted_program_keeps_the_last_good_state(kernel, openai_server):
    ok = _run(kernel, openai_server, "kept = [1, 2, 3]")
    assert ok.status == "ok", ok.error()
    openai_server.enqueue(fence("kept = 'changed'\nraise ValueError('boom')"))
    openai_server.enqueue(fence("kept = 'changed again'\nraise ValueError('boom')"))
    openai_server.enqueue(fence("kept = 'and again'\nraise ValueError('boom')"))
    failed = kernel.execute("break it", timeout=300)
    assert failed.status == "error"
    after = _run(kernel, openai_server, "print(kept)")
    assert after.stdout() == "[1, 2, 3]\n"


def test_figures_appear_inline_in_order_and_a_dataframe_comes_back(kernel, openai_server):
    kernel.execute("%share sales")
    cell = _run(kernel, openai_server,
                "import matplotlib.pyplot as plt\n"
                "plt.figure(); plt.title('first'); plt.plot([1, 2, 3])\n"
                "fig, ax = plt.subplots(); ax.bar(['a', 'b'], [3, 1]); ax.set_title('second')\n"
                "set_result(sales.groupby('region', observed=True)[['revenue']].sum())")
    assert cell.status == "ok", cell.error()
    pngs = [m["content"]["data"]["image/png"] for m in cell.outputs("display_data") if "image/png" in m["content"]["data"]]
    assert len(pngs) == 2 and pngs[0] != pngs[1]
    back = kernel.execute("%%python\nprint(type(result).__name__, result.loc['EU', 'revenue'], "
                          "result.index.dtype)")
    assert back.stdout() == "DataFrame 200.75 category\n"


def test_bad_input_says_what_and_changes_nothing(kernel, openai_server, start_kernel, tmp_path):
    missing = kernel.execute("%share nowhere")
    assert "nowhere is not defined in the notebook" in said(missing)
    kernel.execute("%%python\nodd = pd.DataFrame({'ok': [1], 'things': [object()]})")
    odd = kernel.execute("%share odd")
    assert "things" in said(odd)  # names the column
    listing = kernel.execute("%share").stdout()
    assert "odd" not in listing and "nowhere" not in listing
    for _ in range(2):  # the repairs it asks for
        openai_server.enqueue(fence("import torch"))
    missing_package = _run(kernel, openai_server, "import torch")
    assert missing_package.error()["ename"] == "ModuleNotFoundError"
    assert "pandas" in missing_package.error()["evalue"] or "pandas" in json.dumps(missing_package.error()["traceback"])
    small = start_kernel(kernel_env(openai_server, CODEACT_DATA_MAX_MB="0.001"), widgets=False)
    small.execute(SALES)
    big = small.execute("%%python\nbig = list(range(10_000))")
    assert big.status == "ok"
    refused = small.execute("%share big")
    assert "big" in said(refused) and "limit" in said(refused)
