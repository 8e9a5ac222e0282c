"""Notebook data as data: how values cross between the kernel and a program, both ways.

A program runs in a guest that shares no memory and no Python with the kernel (another
CPython, another pandas), and a program is untrusted: so a value never crosses as a pickle,
which would tie both sides to one pandas's internals and let a program run code in the
kernel when it is loaded. It crosses as a *blob*: a first line saying what it is, then either
JSON text or a JSON manifest followed by raw little-endian numpy buffers.

    codeact-data 1 json\\n<the value's JSON, ASCII>
    codeact-data 1 numpy <manifest bytes>\\n<manifest JSON><buffers>
    codeact-data 1 pandas <manifest bytes>\\n<manifest JSON><buffers>

The json kind is a JSON document after one line, so a guest without numpy reads it with the
standard library alone. The manifest names, for each array, a dtype from a short list of
plain numpy dtypes (never object or structured ones) and where its bytes are; pandas values
are described by what they *mean* (values and mask, codes and categories, UTC instants and
a time-zone name, a string table), never by how one pandas version lays them out, and are
rebuilt with pandas' public constructors. Decoding a blob a program made runs no code from
it: no pickle, no eval; every length is checked against the blob before it is read, and
any malformation is a `DataError`.

This module is imported by the kernel and copied as it is into guests that have numpy and
pandas: it needs only the standard library, and imports numpy and pandas only for a value
or blob that holds them.

What crosses, exactly (dtype, missing values, names and index included):
- JSON values: dict (str keys), list, str, int, float (NaN and infinities too), bool, None.
  A tuple arrives as a list and a numpy bool, integer or float scalar inside one as the
  Python number, as in `call_tool`'s arguments.
- numpy arrays of any shape, numpy scalars: bool, integers, float16/32/64, complex64/128,
  datetime64 and timedelta64 (any unit), fixed-width str and bytes, numpy 2's StringDType.
- pandas DataFrame, Series and Index (RangeIndex, MultiIndex on rows and on columns, a
  DatetimeIndex's freq); columns of numpy dtypes, datetime64 with a time zone, category
  (ordered or not, any categories' dtype), StringDtype and pandas 3's `str`, the nullable
  Int8..UInt64, Float32/64 and boolean; an object column of str and missing values (None,
  NaN, pd.NA); Timestamp and Timedelta scalars.

Differences that remain, by design:
- A string column's storage (python or pyarrow) is not data: one with its side's default
  storage arrives with the receiving side's default (a host `str` column backed by pyarrow
  is python-backed in a guest without pyarrow, and pyarrow-backed again when it comes back);
  an explicit storage arrives as itself where that side has it, else as the default.
- Time zones arrive as zoneinfo zones (or datetime.timezone for UTC and fixed offsets), the
  same instants and zone names: a pytz zone arrives as the zoneinfo zone of its name.
- DataFrame.attrs and flags, and subclasses of DataFrame, Series and ndarray, do not cross; a
  big-endian array arrives little-endian (the same values).
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
import sys
from typing import Any, Literal

try:
    from .errors import DataError
except ImportError:  # copied alone into a guest: no package around it

    class DataError(ValueError):  # type: ignore[no-redef]
        """A value that cannot cross as data, or a blob that is not valid data."""


Kind = Literal["json", "numpy", "pandas"]

DEFAULT_LIMIT = 100_000_000
"""Bytes an encoded value may take: a guest holds what it is given in its own memory."""

_MAGIC = b"codeact-data"
_VERSION = 1
_JSON_HEAD = b"codeact-data 1 json\n"
_MAX_FIRST_LINE = 64
_MAX_DEPTH = 100  # JSON nesting: the standard guest runs with a recursion limit of 400
_MAX_NDIM = 32
_MAX_TUPLE_DEPTH = 8  # a name that is a tuple of tuples...
_SCALARS = frozenset((str, int, float, bool, type(None)))
_JSON_TYPES = _SCALARS | {dict, list, tuple}

# numpy dtype kinds a buffer may hold, and the sizes allowed for floats and complex numbers
# (long double's layout differs between machines: x86-64's 80 bits, wasm32's 128).
_ARRAY_KINDS = "biufcmMUS"
_FLOAT_SIZES = {"f": (2, 4, 8), "c": (8, 16)}
_MASKED = {
    "Int8": "i1", "Int16": "i2", "Int32": "i4", "Int64": "i8",
    "UInt8": "u1", "UInt16": "u2", "UInt32": "u4", "UInt64": "u8",
    "Float32": "f4", "Float64": "f8", "boolean": "b1",
}
# How a missing value in a string table is told apart, where more than one kind may occur.
_NONE, _NAN, _NA = 1, 2, 3


# --- the public surface ------------------------------------------------------------------

def encode(value: Any, *, name: str = "value", limit: int = DEFAULT_LIMIT) -> bytes:
    """`value` as a blob; `DataError` names `name` (and the column or item) when it cannot cross."""
    if type(value) in _JSON_TYPES:
        blob = _JSON_HEAD + _json_text(value, name).encode("ascii")
        _check_size(len(blob), name, limit)
        return blob
    kind, libs = _library_kind(value, name)
    writer = _Writer(*libs)
    manifest = (_encode_numpy if kind == "numpy" else _encode_pandas)(value, name, writer)
    manifest["buffers"] = writer.regions
    text = json.dumps(manifest, separators=(",", ":"), allow_nan=True).encode("ascii")
    head = b"%s %d %s %d\n" % (_MAGIC, _VERSION, kind.encode(), len(text))
    _check_size(len(head) + len(text) + writer.size, name, limit)
    return b"".join([head, text, *writer.parts])


def decode(blob: bytes, *, limit: int = DEFAULT_LIMIT) -> Any:
    """The value a blob holds, a new object each time; `DataError` for anything malformed.

    Safe for blobs a program made: nothing in a blob is run, and nothing is allocated beyond
    a small multiple of the blob's own size.
    """
    view = memoryview(blob).cast("B")
    if len(view) > limit:
        raise DataError(f"the data is {len(view):,} bytes, over the limit of {limit:,} bytes")
    found, start, manifest_length = _first_line(view)
    try:
        if found == "json":
            return json.loads(bytes(view[start:]))
        manifest = json.loads(bytes(view[start:start + manifest_length]))
        reader = _Reader(view, start + manifest_length)
        if type(manifest) is not dict:
            raise DataError("the manifest is not a JSON object")
        return (_decode_numpy if found == "numpy" else _decode_pandas)(manifest, reader)
    except DataError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, AttributeError) as exc:
        # ValueError covers JSON's, numpy's and pandas' refusals, and UnicodeDecodeError.
        raise DataError(f"not valid {found} data: {type(exc).__name__}: {exc}") from None


def kind(blob: bytes) -> Kind:
    """What a blob holds, read from its first line alone."""
    return _first_line(memoryview(blob).cast("B"))[0]


def json_text(blob: bytes) -> str:
    """The JSON text of a json-kind blob, checked: what a guest without numpy is given."""
    view = memoryview(blob).cast("B")
    found, start, _ = _first_line(view)
    if found != "json":
        raise DataError(f"this is {found} data, not JSON")
    try:
        text = bytes(view[start:]).decode("utf-8")
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DataError(f"not valid json data: {type(exc).__name__}: {exc}") from None
    return text


def json_blob(text: str, *, name: str = "value", limit: int = DEFAULT_LIMIT) -> bytes:
    """A json-kind blob of JSON text (checked to be one JSON value): how a value a guest without
    numpy wrote as JSON becomes data, without reading it into objects and writing it again."""
    try:
        # The scanner itself: json.loads' own steps around it cost more than it does on a
        # small value, and a guest's program may leave many.
        end = _SCAN(text, 0)[1]
    except StopIteration:
        end = -1
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{name} is not valid JSON: {type(exc).__name__}: {exc}") from None
    if end != len(text):
        raise DataError(f"{name} is not one valid JSON value")
    try:
        blob = _JSON_HEAD + text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, unescaped
        raise DataError(f"{name} is not valid JSON text: {exc}") from None
    _check_size(len(blob), name, limit)
    return blob


def is_data(value: Any) -> bool:
    """Whether `value` would cross (size aside): checked without encoding it."""
    try:
        _check(value)
    except DataError:
        return False
    return True


def fingerprint(blob: bytes) -> str:
    """SHA-256 of the blob, hex: what the transcript records of a value that crossed."""
    return hashlib.sha256(blob).hexdigest()


def schema(value: Any) -> dict[str, Any]:
    """What a value is, without its values: type, shape, column names and dtypes (JSON)."""
    if type(value) in _JSON_TYPES:
        return _json_schema(value)
    kind, (np, pd) = _library_kind(value, "value")
    if kind == "numpy":
        array = np.asarray(value)
        if isinstance(value, np.generic):
            return {"kind": "numpy", "type": "scalar", "dtype": str(array.dtype)}
        return {"kind": "numpy", "type": "ndarray", "dtype": str(array.dtype), "shape": list(array.shape)}
    if isinstance(value, pd.DataFrame):
        return {"kind": "pandas", "type": "DataFrame", "shape": list(value.shape),
                "columns": [{"name": _shown(label), "dtype": str(dtype)}
                            for label, dtype in zip(value.columns, value.dtypes)],
                "index": _index_schema(value.index)}
    if isinstance(value, pd.Series):
        return {"kind": "pandas", "type": "Series", "name": _shown(value.name), "length": len(value),
                "dtype": str(value.dtype), "index": _index_schema(value.index)}
    if isinstance(value, pd.Index):
        return {"kind": "pandas", "type": "Index", "length": len(value), "index": _index_schema(value)}
    return {"kind": "pandas", "type": type(value).__name__, "dtype": str(_scalar_dtype(value, pd))}


def describe(value: Any, *, columns: int = 12) -> str:
    """One line for a person or a model, without values, e.g.
    ``DataFrame 1,000 × 3 · region: str, month: datetime64[ns, UTC], revenue: float64``."""
    info = schema(value)
    what = info["type"]
    if info["kind"] == "json":
        if what in ("list", "dict", "str"):
            unit = {"list": "items", "dict": "keys", "str": "characters"}[what]
            text = f"{what} of {info['length']:,} {unit}"
            if what == "dict" and info["keys"]:
                more = info["length"] - len(info["keys"])
                text += ": " + ", ".join(info["keys"]) + (f", … ({more:,} more)" if more else "")
            return text
        return what
    if info["kind"] == "numpy":
        if what == "scalar":
            return f"numpy {info['dtype']} scalar"
        return f"ndarray {info['dtype']} {tuple(info['shape'])}"
    if what == "DataFrame":
        rows, count = info["shape"]
        shown = [f"{c['name']}: {c['dtype']}" for c in info["columns"][:columns]]
        if count > columns:
            shown.append(f"… ({count - columns:,} more)")
        parts = [f"DataFrame {rows:,} × {count:,}"] + ([", ".join(shown)] if shown else [])
    elif what == "Series":
        named = f" {info['name']}" if info["name"] is not None else ""
        parts = [f"Series{named} {info['length']:,}", info["dtype"]]
    elif what == "Index":
        return f"{info['index']['type']} {info['length']:,} · " + _index_text(info["index"])
    else:
        return f"{what} {info['dtype']}"
    if info["index"]["type"] != "RangeIndex":
        parts.append("index: " + _index_text(info["index"]))
    return " · ".join(parts)


def head(value: Any, n: int = 5) -> str:
    """The first `n` rows (items) as text, for when a person asks to see some values."""
    if type(value) in (list, tuple):
        more = len(value) - n
        return json.dumps(list(value[:n]), default=str) + (f" … ({more:,} more)" if more > 0 else "")
    if type(value) is dict:
        items = dict(list(value.items())[:n])
        more = len(value) - n
        return json.dumps(items, default=str) + (f" … ({more:,} more)" if more > 0 else "")
    if type(value) in _SCALARS:
        return repr(value)
    kind, (np, pd) = _library_kind(value, "value")
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.head(n).to_string()
    if isinstance(value, np.ndarray) and value.ndim:
        return np.array2string(value[:n])
    return repr(value)


# --- the first line ------------------------------------------------------------------------

def _first_line(view: memoryview) -> tuple[Kind, int, int]:
    """(kind, where the rest starts, the manifest's length) from a blob's first line."""
    first = bytes(view[:_MAX_FIRST_LINE])
    end = first.find(b"\n")
    fields = first[:end].split(b" ") if end > 0 else []
    if len(fields) < 3 or fields[0] != _MAGIC:
        raise DataError("not codeact data (it does not start with a 'codeact-data' line)")
    if fields[1] != b"%d" % _VERSION:
        raise DataError(f"codeact data of version {fields[1].decode('ascii', 'replace')}, "
                        f"which this version (reading version {_VERSION}) cannot read")
    found = fields[2].decode("ascii", "replace") if len(fields) > 2 else ""
    if found == "json" and len(fields) == 3:
        return "json", end + 1, 0
    if found in ("numpy", "pandas") and len(fields) == 4 and fields[3].isdigit():
        length = int(fields[3])
        if end + 1 + length > len(view):
            raise DataError(f"the {found} manifest runs past the end of the data")
        return found, end + 1, length  # type: ignore[return-value]
    raise DataError(f"not codeact data: its first line is {first[:end]!r}")


def _check_size(size: int, name: str, limit: int) -> None:
    if size > limit:
        raise DataError(f"{name} is {size:,} bytes as data, over the limit of {limit:,} bytes")


def _library_kind(value: Any, name: str) -> tuple[Kind, tuple[Any, Any]]:
    """("numpy" | "pandas", (numpy, pandas)) for a value of theirs, or DataError.

    A value can only be theirs if they are imported already: nothing is imported to find out.
    """
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series, pd.Index, pd.Timestamp, pd.Timedelta)):
        return "pandas", (np, pd)
    if np is not None and isinstance(value, (np.ndarray, np.generic)):
        return "numpy", (np, pd)
    raise DataError(f"{name} is a {_type_name(value)}, which is not data: JSON values (dict, list, str, "
                    "int, float, bool, None), numpy arrays and pandas DataFrames, Series and Index cross")


def _type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__") else f"{module.split('.')[0]}.{kind.__qualname__}"


# --- JSON ------------------------------------------------------------------------------------

def _json_text(value: Any, name: str) -> str:
    _check_json(value, name)
    try:
        return _JSON_ENCODER.encode(value)
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. an int of more than 4,300 digits
        raise DataError(f"{name} cannot be written as JSON: {exc}") from None


def _plain_number(value: Any) -> Any:
    """numpy's bool and integer scalars, which json.dumps cannot write (its floats it can)."""
    return value.item()


_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True, default=_plain_number)
_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # (text, at) -> (value, end)


def _check_json(value: Any, name: str) -> None:
    """Refuse, naming where, what JSON would change or cannot hold."""
    np = sys.modules.get("numpy")
    numbers = (np.bool_, np.integer, np.floating) if np is not None else ()
    stack: list[tuple[Any, Any, int]] = [(value, None, 0)]
    while stack:
        item, path, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list or kind is tuple:
            if depth >= _MAX_DEPTH:
                raise DataError(f"{_where(name, path)} is nested more than {_MAX_DEPTH} levels deep "
                                "(or holds itself)")
            if kind is dict:
                for key, sub in item.items():
                    if type(key) is not str:
                        raise DataError(f"{_where(name, path)} has the key {key!r} ({type(key).__name__}): "
                                        "JSON keys are strings, so it would arrive changed: use str keys")
                    if type(sub) not in _SCALARS:
                        stack.append((sub, (path, key), depth + 1))
            else:
                for index, sub in enumerate(item):
                    if type(sub) not in _SCALARS:
                        stack.append((sub, (path, index), depth + 1))
        elif kind not in _SCALARS and not (numbers and isinstance(item, numbers)):
            what = _type_name(item)
            if np is not None and isinstance(item, (np.ndarray, np.generic)) or what.startswith("pandas."):
                raise DataError(f"{_where(name, path)} is a {what} inside a JSON value: only a whole value "
                                "(not one inside a dict or list) crosses as an array or a table")
            raise DataError(f"{_where(name, path)} is a {what}, which is not a JSON value")


def _where(name: str, path: Any) -> str:
    keys = []
    while path is not None:
        path, key = path
        keys.append(f"[{key!r}]")
    return name + "".join(reversed(keys))


def _json_schema(value: Any) -> dict[str, Any]:
    kind = type(value)
    info: dict[str, Any] = {"kind": "json", "type": "list" if kind is tuple else
                            "None" if value is None else kind.__name__}
    if kind in (list, tuple, dict, str):
        info["length"] = len(value)
    if kind is dict:
        info["keys"] = [str(key) for key in list(value)[:8]]
    return info


# --- writing ---------------------------------------------------------------------------------

class _Writer:
    """Collects the buffers of one blob and describes each for the manifest.

    `dry` checks everything a real write would, but keeps no bytes (`is_data`).
    """

    def __init__(self, np: Any, pd: Any, dry: bool = False) -> None:
        self.np = np
        self.pd = pd
        self.dry = dry
        self.parts: list[Any] = []
        self.regions: list[list[int]] = []
        self.size = 0

    def raw(self, data: Any) -> int:
        """Add bytes (anything with the buffer protocol); their index in the manifest."""
        length = memoryview(data).nbytes
        self.regions.append([self.size, length])
        if not self.dry:
            self.parts.append(data)
        self.size += length
        return len(self.regions) - 1

    def array(self, array: Any, where: str) -> dict[str, Any]:
        """A plain numpy array (a dtype `_ARRAY_KINDS` allows), as C-ordered little-endian bytes."""
        np = self.np
        dtype = array.dtype
        _check_dtype(dtype, where)
        spec = {"dtype": None, "shape": list(array.shape), "buffer": None}
        if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
            array = array.astype(dtype.newbyteorder("<"))
        spec["dtype"] = array.dtype.str
        if self.dry:
            spec["buffer"] = self.raw(b"")
            self.size += array.nbytes
            return spec
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        spec["buffer"] = self.raw(array.reshape(-1).view(np.uint8))
        return spec

    def strings(self, values: Any, where: str, missing_allowed: tuple[int, ...]) -> dict[str, Any]:
        """A string table for a 1-D object array of str and missing values: the characters of
        all the strings as one UTF-8 buffer, their offsets (in characters) and, if any are
        missing, which missing value each was."""
        np, pd = self.np, self.pd
        found = pd.api.types.infer_dtype(values, skipna=True) if len(values) else "empty"
        if found not in ("string", "empty"):
            _refuse_object(values, where, pd)
        missing = np.asarray(pd.isna(values), dtype=bool)
        codes = None
        texts = values
        if missing.any():
            codes = np.zeros(len(values), dtype=np.uint8)
            for at in np.flatnonzero(missing):
                item = values[at]
                code = _NONE if item is None else _NA if item is pd.NA else _NAN if type(item) is float else 0
                if code not in missing_allowed:
                    raise DataError(f"{where} holds {item!r} at position {at:,}: its missing values must be "
                                    "None, NaN or pd.NA")
                codes[at] = code
            texts = np.where(missing, "", values)
        table: dict[str, Any] = {"count": len(values), "missing": None}
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        table["offsets"] = self.array(offsets, where)
        if self.dry:
            table["chars"] = self.raw(b"")
            self.size += int(offsets[-1])  # at least a byte a character: enough for a dry run
        else:
            table["chars"] = self.raw("".join(texts).encode("utf-8", "surrogatepass"))
        if codes is not None:
            table["missing"] = self.array(codes, where)
        return table


def _check_dtype(dtype: Any, where: str) -> None:
    if dtype.kind == "O":
        raise DataError(f"{where} holds Python objects (dtype object), which cannot cross: arrays of "
                        "numbers, bool, datetime64, timedelta64 and str do")
    sizes = _FLOAT_SIZES.get(dtype.kind)
    if (dtype.kind not in _ARRAY_KINDS or dtype.names is not None or dtype.subdtype is not None
            or dtype.itemsize == 0 or (sizes is not None and dtype.itemsize not in sizes)):
        raise DataError(f"{where} has dtype {dtype}, which cannot cross: arrays of bool, integers, float16/32/64, "
                        "complex64/128, datetime64, timedelta64, str and bytes do")


def _refuse_object(values: Any, where: str, pd: Any) -> None:
    """Name the first item of an object column that is neither a str nor a missing value."""
    for at, item in enumerate(values):
        if type(item) is str or item is None or item is pd.NA or (type(item) is float and item != item):
            continue
        if isinstance(item, str):
            continue
        raise DataError(f"{where} has dtype object and holds a {_type_name(item)} at position {at:,}: an "
                        "object column crosses only when it holds str and missing values (None, NaN, pd.NA); "
                        "convert it (e.g. .astype(str), or a numeric or datetime dtype) or drop it")


def _encode_numpy(value: Any, name: str, writer: _Writer) -> dict[str, Any]:
    np = writer.np
    if isinstance(value, np.generic):
        return {"type": "scalar", "array": _numpy_array(np.asarray(value), name, writer)}
    if type(value) is not np.ndarray:
        raise DataError(f"{name} is a {_type_name(value)}, a subclass of numpy's ndarray, which cannot cross "
                        "as itself: np.asarray(...) makes it a plain array (a masked array loses its mask)")
    return {"type": "ndarray", "array": _numpy_array(value, name, writer)}


def _numpy_array(array: Any, name: str, writer: _Writer) -> dict[str, Any]:
    dtype = array.dtype
    if dtype.kind == "T":  # numpy 2's variable-width strings
        if hasattr(dtype, "na_object"):
            raise DataError(f"{name} has a StringDType with a missing value ({dtype.na_object!r}), which "
                            "cannot cross: one without does")
        flat = array.reshape(-1).astype(object)
        return {"kind": "strings", "shape": list(array.shape),
                "table": writer.strings(flat, name, missing_allowed=())}
    if array.ndim > _MAX_NDIM:
        raise DataError(f"{name} has {array.ndim} dimensions, more than {_MAX_NDIM}")
    return {"kind": "numpy", **writer.array(array, name)}


def _encode_pandas(value: Any, name: str, writer: _Writer) -> dict[str, Any]:
    pd = writer.pd
    if isinstance(value, pd.DataFrame):
        columns = value.columns
        data = [_pandas_array(value.iloc[:, at], f"{name} column {_shown(columns[at])!s}", writer)
                for at in range(value.shape[1])]
        return {"type": "DataFrame", "rows": len(value), "index": _index(value.index, f"{name} index", writer),
                "columns": _index(columns, f"{name} columns", writer), "data": data}
    if isinstance(value, pd.Series):
        return {"type": "Series", "rows": len(value), "name": _label(value.name, f"{name} name"),
                "index": _index(value.index, f"{name} index", writer), "data": _pandas_array(value, name, writer)}
    if isinstance(value, pd.Index):
        return {"type": "Index", "index": _index(value, name, writer)}
    # A Timestamp or a Timedelta: a one-element array of its dtype (its unit, its zone).
    array = pd.array([value], dtype=_scalar_dtype(value, pd))
    return {"type": "scalar", "data": _pandas_array(pd.Series(array), name, writer)}


def _scalar_dtype(value: Any, pd: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return pd.DatetimeTZDtype(value.unit, value.tz) if value.tz is not None else f"datetime64[{value.unit}]"
    if isinstance(value, pd.Timedelta):
        return f"timedelta64[{value.unit}]"
    return None


def _pandas_array(values: Any, where: str, writer: _Writer, nested: bool = False) -> dict[str, Any]:
    """A 1-D pandas column (a Series or an Index) by what it means, not by pandas' layout."""
    np, pd = writer.np, writer.pd
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            return {"kind": "object", "table": writer.strings(values.to_numpy(dtype=object), where,
                                                              missing_allowed=(_NONE, _NAN, _NA))}
        if dtype.kind not in "biufcmM":
            raise DataError(f"{where} has dtype {dtype}, which cannot cross")
        return {"kind": "numpy", **writer.array(values.to_numpy(), where)}
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc = pd.DatetimeIndex(values).tz_convert(None).to_numpy()
        return {"kind": "datetimetz", "tz": _zone(dtype.tz, where), "values": writer.array(utc, where)}
    if isinstance(dtype, pd.CategoricalDtype) and not nested:
        categorical = values.array
        return {"kind": "category", "ordered": bool(dtype.ordered),
                "codes": writer.array(np.asarray(categorical.codes), where),
                "categories": _pandas_array(dtype.categories, f"{where} categories", writer, nested=True)}
    if isinstance(dtype, pd.StringDtype):
        na = "NA" if dtype.na_value is pd.NA else "nan"
        storage = dtype.storage
        if storage == pd.StringDtype(na_value=dtype.na_value).storage:
            storage = "default"  # this side's default: the other side's default, there
        objects = values.to_numpy(dtype=object, na_value=None)
        return {"kind": "string", "na": na, "storage": storage,
                "table": writer.strings(objects, where, missing_allowed=(_NONE,))}
    if getattr(dtype, "name", None) in _MASKED and isinstance(dtype, pd.api.extensions.ExtensionDtype):
        array = values.array
        mask = np.asarray(array.isna(), dtype=bool)
        numbers = array.to_numpy(dtype=_MASKED[dtype.name], na_value=False if dtype.name == "boolean" else 0)
        return {"kind": "masked", "dtype": dtype.name, "values": writer.array(numbers, where),
                "mask": writer.array(mask, where)}
    raise DataError(f"{where} has dtype {dtype}, which cannot cross: numeric, bool, datetime64 (with or without "
                    "a time zone), timedelta64, category, str and string, the nullable Int/UInt/Float/boolean "
                    "dtypes, and object columns of str do")


def _zone(tz: Any, where: str) -> dict[str, Any]:
    """A time zone by its name (or UTC offset), which both sides' zoneinfo knows."""
    import datetime

    if isinstance(tz, datetime.timezone):
        return {"offset": tz.utcoffset(None).total_seconds()}
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # zoneinfo; pytz
    if isinstance(key, str):
        return {"zone": key}
    raise DataError(f"{where} has the time zone {tz!r}, which cannot cross: a zoneinfo zone (a name such "
                    "as 'Europe/Paris'), UTC or a fixed offset can")


def _index(index: Any, where: str, writer: _Writer) -> dict[str, Any]:
    pd = writer.pd
    if type(index) is pd.RangeIndex:
        return {"kind": "range", "start": int(index.start), "stop": int(index.stop), "step": int(index.step),
                "name": _label(index.name, f"{where} name")}
    if isinstance(index, pd.MultiIndex):
        return {"kind": "multi",
                "names": [_label(name, f"{where} name") for name in index.names],
                "levels": [_pandas_array(level, f"{where} level {at}", writer) for at, level in enumerate(index.levels)],
                "codes": [writer.array(writer.np.asarray(codes), f"{where} codes") for codes in index.codes]}
    spec = {"kind": "index", "name": _label(index.name, f"{where} name"),
            "array": _pandas_array(index, where, writer), "freq": None}
    freq = getattr(index, "freqstr", None)
    if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)) and freq:
        spec["freq"] = freq
    return spec


def _label(label: Any, where: str, depth: int = 0) -> Any:
    """A name (of a Series, an index, a level) as JSON: str, int, float, bool, None, tuples of them."""
    kind = type(label)
    if kind in _SCALARS:
        return label
    if kind is tuple and depth < _MAX_TUPLE_DEPTH:
        return {"tuple": [_label(item, where, depth + 1) for item in label]}
    np = sys.modules.get("numpy")
    if np is not None and isinstance(label, (np.bool_, np.integer, np.floating)):
        return label.item()
    raise DataError(f"{where} is {label!r} ({_type_name(label)}), which cannot cross: names may be str, int, "
                    "float, bool, None or tuples of them")


def _shown(label: Any) -> Any:
    """A label for a person: itself if a str, else its repr (kept JSON for `schema`)."""
    return label if isinstance(label, str) or label is None else repr(label)


def _index_schema(index: Any) -> dict[str, Any]:
    pd = sys.modules["pandas"]
    if isinstance(index, pd.MultiIndex):
        return {"type": "MultiIndex", "levels": [{"name": _shown(name), "dtype": str(level.dtype)}
                                                 for name, level in zip(index.names, index.levels)]}
    return {"type": type(index).__name__, "levels": [{"name": _shown(index.name), "dtype": str(index.dtype)}]}


def _index_text(info: dict[str, Any]) -> str:
    return ", ".join(f"{level['name']}: {level['dtype']}" if level["name"] is not None else level["dtype"]
                     for level in info["levels"])


def _check(value: Any) -> None:
    """What `encode` would refuse, size aside, without writing any bytes."""
    if type(value) in _JSON_TYPES:
        _check_json(value, "value")
        return
    kind, libs = _library_kind(value, "value")
    writer = _Writer(*libs, dry=True)
    (_encode_numpy if kind == "numpy" else _encode_pandas)(value, "value", writer)


# --- reading ---------------------------------------------------------------------------------

class _Reader:
    """Reads a manifest's arrays out of the blob, checking every field it uses."""

    def __init__(self, view: memoryview, data_start: int) -> None:
        import numpy

        self.np = numpy
        self.pd: Any = None
        self.view = view
        self.data_start = data_start

    def region(self, index: Any, regions: list[Any]) -> tuple[int, int]:
        """(start, length) of buffer `index`, inside the blob."""
        if type(index) is not int or not 0 <= index < len(regions):
            raise DataError(f"a buffer index {index!r} that is not in the manifest")
        region = regions[index]
        if (type(region) is not list or len(region) != 2 or any(type(x) is not int or x < 0 for x in region)
                or self.data_start + region[0] + region[1] > len(self.view)):
            raise DataError(f"buffer {index} lies outside the data")
        return self.data_start + region[0], region[1]

    def array(self, spec: Any, regions: list[Any]) -> Any:
        """A new numpy array (its own memory, writable) from a plain array's spec."""
        np = self.np
        dtype_text = _get(spec, "dtype", str)
        if len(dtype_text) > 32:
            raise DataError("a dtype name longer than any allowed")
        dtype = np.dtype(dtype_text)
        _check_dtype(dtype, "an array")
        if dtype.byteorder == ">":
            raise DataError("a big-endian array (data is little-endian)")
        shape = _get(spec, "shape", list)
        if len(shape) > _MAX_NDIM or any(type(size) is not int or size < 0 for size in shape):
            raise DataError(f"an array of shape {shape!r}")
        count = 1
        for size in shape:
            count *= size
        start, length = self.region(spec.get("buffer"), regions)
        if count * dtype.itemsize != length:
            raise DataError(f"an array of shape {tuple(shape)} and dtype {dtype} in {length:,} bytes")
        if count == 0:
            return np.empty(shape, dtype=dtype)
        return np.frombuffer(self.view, dtype=dtype, count=count, offset=start).reshape(shape).copy()

    def strings(self, table: Any, regions: list[Any]) -> Any:
        """A 1-D object array of str, with None where a string is missing (and the codes saying
        which missing value it was, or None)."""
        np = self.np
        count = _get(table, "count", int)
        offsets = self.array(_get(table, "offsets", dict), regions)
        if offsets.dtype != np.int64 or offsets.shape != (count + 1,):
            raise DataError("a string table whose offsets do not match its count")
        start, length = self.region(table.get("chars"), regions)
        chars = bytes(self.view[start:start + length]).decode("utf-8", "surrogatepass")
        if offsets[0] != 0 or offsets[-1] != len(chars) or (count and np.any(offsets[1:] < offsets[:-1])):
            raise DataError("a string table whose offsets do not fit its characters")
        bounds = offsets.tolist()
        result = np.empty(count, dtype=object)
        result[:] = [chars[bounds[at]:bounds[at + 1]] for at in range(count)]
        codes = None
        if table.get("missing") is not None:
            codes = self.array(table["missing"], regions)
            if codes.dtype != np.uint8 or codes.shape != (count,) or np.any(codes > _NA):
                raise DataError("a string table whose missing-value codes do not match it")
            result[codes != 0] = None
        return result, codes


def _get(spec: Any, key: str, kind: type) -> Any:
    if type(spec) is not dict:
        raise DataError(f"a manifest entry that is not an object where {key!r} was expected")
    value = spec.get(key)
    if type(value) is not kind:
        raise DataError(f"a manifest entry whose {key!r} is not a {kind.__name__}")
    return value


def _regions(manifest: dict[str, Any]) -> list[Any]:
    return _get(manifest, "buffers", list)


def _decode_numpy(manifest: dict[str, Any], reader: _Reader) -> Any:
    regions = _regions(manifest)
    what = _get(manifest, "type", str)
    spec = _get(manifest, "array", dict)
    if spec.get("kind") == "strings":
        array = _numpy_strings(spec, reader, regions)
    elif spec.get("kind") == "numpy":
        array = reader.array(spec, regions)
    else:
        raise DataError(f"an array of kind {spec.get('kind')!r}")
    if what == "ndarray":
        return array
    if what == "scalar" and array.shape == ():
        return array[()]
    raise DataError(f"numpy data of type {what!r}")


def _numpy_strings(spec: dict[str, Any], reader: _Reader, regions: list[Any]) -> Any:
    np = reader.np
    shape = _get(spec, "shape", list)
    texts, codes = reader.strings(_get(spec, "table", dict), regions)
    if codes is not None:
        raise DataError("a StringDType array with missing values")
    if any(type(size) is not int or size < 0 for size in shape) or len(shape) > _MAX_NDIM:
        raise DataError(f"an array of shape {shape!r}")
    count = 1
    for size in shape:
        count *= size
    if count != len(texts):
        raise DataError(f"{len(texts):,} strings for an array of shape {tuple(shape)}")
    return texts.astype(np.dtypes.StringDType()).reshape(shape)


def _decode_pandas(manifest: dict[str, Any], reader: _Reader) -> Any:
    import pandas

    reader.pd = pd = pandas
    regions = _regions(manifest)
    what = _get(manifest, "type", str)
    if what == "DataFrame":
        rows = _get(manifest, "rows", int)
        index = _read_index(_get(manifest, "index", dict), reader, regions, rows)
        specs = _get(manifest, "data", list)
        columns = _read_index(_get(manifest, "columns", dict), reader, regions, len(specs))
        series = {}
        for at, spec in enumerate(specs):
            array = _read_array(spec, reader, regions)
            if len(array) != rows:
                raise DataError(f"column {at} has {len(array):,} rows, the frame {rows:,}")
            series[at] = pd.Series(array, dtype=array.dtype, copy=False)
        frame = pd.DataFrame(series, copy=False) if series else pd.DataFrame(index=pd.RangeIndex(rows))
        frame.index = index
        frame.columns = columns
        return frame
    if what == "Series":
        rows = _get(manifest, "rows", int)
        index = _read_index(_get(manifest, "index", dict), reader, regions, rows)
        array = _read_array(_get(manifest, "data", dict), reader, regions)
        if len(array) != rows:
            raise DataError(f"a Series of {len(array):,} values for {rows:,} rows")
        return pd.Series(array, index=index, dtype=array.dtype, name=_read_label(manifest.get("name")), copy=False)
    if what == "Index":
        return _read_index(_get(manifest, "index", dict), reader, regions, None)
    if what == "scalar":
        array = _read_array(_get(manifest, "data", dict), reader, regions)
        if len(array) != 1 or array.dtype.kind not in "mM":
            raise DataError("a pandas scalar that is not one Timestamp or Timedelta")
        return pd.Series(array, dtype=array.dtype, copy=False).iloc[0]
    raise DataError(f"pandas data of type {what!r}")


def _read_array(spec: Any, reader: _Reader, regions: list[Any], nested: bool = False) -> Any:
    """A 1-D numpy array or pandas ExtensionArray from a column's spec."""
    np, pd = reader.np, reader.pd
    kind = _get(spec, "kind", str)
    if kind == "numpy":
        array = reader.array(spec, regions)
        if array.ndim != 1 or array.dtype.kind not in "biufcmM":
            raise DataError(f"a column of dtype {array.dtype} and {array.ndim} dimensions")
        return array
    if kind == "object":
        texts, codes = reader.strings(_get(spec, "table", dict), regions)
        if codes is not None:
            texts[codes == _NAN] = np.nan
            texts[codes == _NA] = pd.NA
        return texts
    if kind == "string":
        na = {"NA": pd.NA, "nan": np.nan}.get(_get(spec, "na", str), ...)
        storage = _get(spec, "storage", str)
        if na is ... or storage not in ("default", "python", "pyarrow"):
            raise DataError(f"a string column of na {spec['na']!r} and storage {storage!r}")
        texts, _ = reader.strings(_get(spec, "table", dict), regions)
        try:
            dtype = pd.StringDtype(None if storage == "default" else storage, na_value=na)
        except ImportError:  # pyarrow asked for, and not here: this side's default
            dtype = pd.StringDtype(na_value=na)
        return pd.array(texts, dtype=dtype)
    if kind == "datetimetz":
        values = reader.array(_get(spec, "values", dict), regions)
        if values.ndim != 1 or values.dtype.kind != "M":
            raise DataError("a datetime column whose values are not datetime64")
        tz = _read_zone(_get(spec, "tz", dict))
        return pd.Series(values, copy=False).dt.tz_localize("UTC").dt.tz_convert(tz).array
    if kind == "masked":
        name = _get(spec, "dtype", str)
        if name not in _MASKED:
            raise DataError(f"a nullable column of dtype {name!r}")
        values = reader.array(_get(spec, "values", dict), regions)
        mask = reader.array(_get(spec, "mask", dict), regions)
        if values.dtype != np.dtype(_MASKED[name]) or mask.dtype != np.bool_ or values.shape != mask.shape \
                or values.ndim != 1:
            raise DataError(f"a nullable {name} column whose values or mask do not match it")
        maker = (pd.arrays.BooleanArray if name == "boolean" else
                 pd.arrays.FloatingArray if name.startswith("Float") else pd.arrays.IntegerArray)
        return maker(values, mask)
    if kind == "category" and not nested:
        codes = reader.array(_get(spec, "codes", dict), regions)
        if codes.ndim != 1 or codes.dtype.kind != "i":
            raise DataError("a category column whose codes are not integers")
        categories = pd.Index(_read_array(_get(spec, "categories", dict), reader, regions, nested=True))
        ordered = _get(spec, "ordered", bool)
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories, ordered=ordered))
    raise DataError(f"a column of kind {kind!r}")


def _read_zone(spec: dict[str, Any]) -> Any:
    import datetime

    if "offset" in spec:
        offset = spec["offset"]
        if type(offset) not in (int, float) or not -86400 < offset < 86400:
            raise DataError(f"a UTC offset of {offset!r} seconds")
        if offset == 0:
            return datetime.timezone.utc
        return datetime.timezone(datetime.timedelta(seconds=offset))
    import zoneinfo

    key = _get(spec, "zone", str)
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError(f"the time zone {key[:64]!r}, which this side does not know ({exc})") from None


def _read_index(spec: dict[str, Any], reader: _Reader, regions: list[Any], length: int | None) -> Any:
    pd = reader.pd
    kind = _get(spec, "kind", str)
    if kind == "range":
        start, stop, step = (_get(spec, key, int) for key in ("start", "stop", "step"))
        index = pd.RangeIndex(start, stop, step, name=_read_label(spec.get("name")))
    elif kind == "index":
        array = _read_array(_get(spec, "array", dict), reader, regions)
        index = pd.Index(array, dtype=array.dtype, name=_read_label(spec.get("name")), copy=False)
        freq = spec.get("freq")
        if freq is not None:
            if type(freq) is not str or len(freq) > 32:
                raise DataError(f"an index frequency {freq!r}")
            if isinstance(index, pd.DatetimeIndex):
                index = pd.DatetimeIndex(index, freq=freq)
            elif isinstance(index, pd.TimedeltaIndex):
                index = pd.TimedeltaIndex(index, freq=freq)
    elif kind == "multi":
        names = _get(spec, "names", list)
        levels = [pd.Index(array, dtype=array.dtype, copy=False)
                  for array in (_read_array(level, reader, regions) for level in _get(spec, "levels", list))]
        codes = [reader.array(item, regions) for item in _get(spec, "codes", list)]
        if not (len(names) == len(levels) == len(codes)) or not levels:
            raise DataError("a MultiIndex whose names, levels and codes do not match")
        if any(item.ndim != 1 or item.dtype.kind != "i" or len(item) != len(codes[0]) for item in codes):
            raise DataError("a MultiIndex whose codes are not integer arrays of one length")
        index = pd.MultiIndex(levels=levels, codes=codes, names=[_read_label(name) for name in names],
                              verify_integrity=True)
    else:
        raise DataError(f"an index of kind {kind!r}")
    if length is not None and len(index) != length:
        raise DataError(f"an index of {len(index):,} entries for {length:,}")
    return index


def _read_label(label: Any, depth: int = 0) -> Any:
    if type(label) in _SCALARS:
        return label
    if type(label) is dict and list(label) == ["tuple"] and type(label["tuple"]) is list and depth < _MAX_TUPLE_DEPTH:
        return tuple(_read_label(item, depth + 1) for item in label["tuple"])
    raise DataError(f"a name that is not a str, number, bool, None or tuple: {str(label)[:80]}")
