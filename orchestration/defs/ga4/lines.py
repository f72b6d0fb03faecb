"""The line-by-line check of a GA4 NDJSON file that DuckDB could not load whole.

A file goes through here only when its fast load refused it (a value that does not cast, an
object where a list belongs, a field the table has never seen, an identifier written as a
number, a line that is not JSON). Every line is read as Python parses JSON and compared with
the table's type tree, so what is wrong is named by its path (`items[0].quantity`), and the
line is either loaded, rewritten where GA4 allows a value in another form (an identifier
written as a JSON number becomes the string of its exact digits), or quarantined as it was
written. Fields the table lacks are collected, to be added as JSON columns before loading.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from orchestration.defs.ga4.schema import GA4_SCHEMA, INTEGERS, Kind

_RANGES = {
    "TINYINT": (-(2**7), 2**7 - 1),
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
    "UTINYINT": (0, 2**8 - 1),
    "USMALLINT": (0, 2**16 - 1),
    "UINTEGER": (0, 2**32 - 1),
}
# How BigQuery names the types, for reasons an operator reads.
_GA4_NAMES = {
    "VARCHAR": "a STRING",
    "BIGINT": "an INT64",
    "DOUBLE": "a FLOAT64",
    "BOOLEAN": "a BOOL",
}
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_FLOAT_TEXT = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)", re.I
)
REQUIRED = ("event_timestamp", "event_name")


class FloatText(str):
    """A JSON number with a fraction or exponent, kept as the digits it was written with."""


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_float=FloatText, parse_constant=_reject_constant)


@dataclass
class Outcome:
    rule: str | None = None  # set when the line is quarantined
    reason: str = ""
    line: str | None = None  # the line to load when it had to be rewritten
    numbers_as_text: int = 0  # identifiers (or other strings) written as JSON numbers


@dataclass
class _Walk:
    problems: list[str] = field(default_factory=list)
    changed: bool = False
    numbers_as_text: int = 0


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, int | FloatText):
        return "a number"
    return "a string"


def _plain(value):
    """The value ready for json.dumps: its numbers as numbers (a FloatText as the float DuckDB
    would read from its digits)."""
    if isinstance(value, FloatText):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _no_duplicates(pairs: list[tuple]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the key {twice} is written twice in one object")
    return dict(pairs)


# What the quick pass tells of a value: as it is, to be written anew, or wrong somewhere.
_OK, _REWRITE, _WRONG = 0, 1, 2


def _quick(kind: Kind, parts: tuple, new_fields: dict):
    """A function telling _OK, _REWRITE or _WRONG of a (non-null) value of `kind`, without
    building paths or copies: the detailed walk runs only for the few lines it flags."""
    if kind.sql == "JSON":
        return lambda value: _OK
    if kind.is_struct:
        fields = {name: _quick(child, (*parts, name), new_fields) for name, child in kind.fields}

        def struct(value) -> int:
            if type(value) is not dict:
                return _WRONG
            status = _OK
            for name, child in value.items():
                check = fields.get(name)
                if check is None:
                    new_fields.setdefault((*parts, name), None)
                elif child is not None:
                    found = check(child)
                    if found > status:
                        if found == _WRONG:
                            return _WRONG
                        status = found
            return status

        return struct
    if kind.is_list:
        element = _quick(kind.element, (*parts, None), new_fields)

        def array(value) -> int:
            if type(value) is not list:
                return _WRONG
            status = _OK
            for item in value:
                if item is not None:
                    found = element(item)
                    if found > status:
                        if found == _WRONG:
                            return _WRONG
                        status = found
            return status

        return array
    if kind.sql.startswith(("MAP(", "UNION(")):  # from a Parquet or Avro file: DuckDB judges
        return lambda value: _OK
    return _QUICK_SCALARS.get(
        kind.sql, lambda value: _WRONG if type(value) in (dict, list) else _OK
    )


def _quick_text(value) -> int:
    kind = type(value)
    if kind is str:
        return _OK
    return _REWRITE if kind in (int, FloatText, bool) else _WRONG


def _quick_integer(low: int, high: int):
    def check(value) -> int:
        kind = type(value)
        if kind is str:
            return _OK if _INTEGER_TEXT.fullmatch(value) and low <= int(value) <= high else _WRONG
        if kind is int:
            return _OK if low <= value <= high else _WRONG
        return _WRONG  # a fraction or an exponent: the detailed walk decides

    return check


def _quick_float64(value) -> int:
    kind = type(value)
    if kind is int or kind is FloatText:
        return _OK
    return _OK if kind is str and _FLOAT_TEXT.fullmatch(value) else _WRONG


def _quick_bool(value) -> int:
    kind = type(value)
    if kind is bool:
        return _OK
    return _OK if kind is str and value.lower() in ("true", "false") else _WRONG


_QUICK_SCALARS = {
    **{sql: _quick_integer(low, high) for sql, (low, high) in _RANGES.items()},
    "VARCHAR": _quick_text,
    "DOUBLE": _quick_float64,
    "FLOAT": _quick_float64,
    "BOOLEAN": _quick_bool,
}


class LineChecker:
    """Checks lines against the table's type tree; collects the fields the table lacks."""

    def __init__(self, table: Kind, reserved: set[str] = frozenset()):
        self.table = table
        self.reserved = reserved  # top-level names an export line may not use
        self.new_fields: dict[tuple, None] = {}  # schema paths, in the order first seen
        self._quick = _quick(table, (), self.new_fields)

    def check(self, text: str, first_line: bool = False) -> Outcome:
        try:
            event = _DECODER.decode(text.removeprefix("\ufeff") if first_line else text)
        except json.JSONDecodeError as exc:
            return Outcome("valid_json", f"malformed JSON ({exc.msg} at column {exc.colno})")
        except ValueError as exc:
            return Outcome("valid_json", f"malformed JSON ({exc})")
        if not isinstance(event, dict):
            return Outcome("valid_json", f"not a JSON object but {_kind_of(event)}")
        if not any(name in GA4_SCHEMA for name in event):
            return Outcome("valid_json", "no GA4 event field")
        status = self._quick(event)
        if (
            status == _OK
            and event.get("event_timestamp") is not None
            and event.get("event_name") is not None
            and not (self.reserved & event.keys())
            and not (first_line and text.startswith("\ufeff"))
        ):
            return Outcome()
        walk = _Walk()
        normalized = self._struct(event, self.table, (), "", walk)
        for name in REQUIRED:
            if event.get(name) is None:
                walk.problems.insert(0, f"{name} missing")
        if walk.problems:
            return Outcome("ga4_event_parses", "; ".join(walk.problems[:5]))
        line = None
        if walk.changed or first_line and text.startswith("\ufeff"):
            # Written anew, so a key written twice would silently lose one of its values:
            # DuckDB refuses such a line as written, and so does this.
            try:
                json.loads(text.removeprefix("\ufeff"), object_pairs_hook=_no_duplicates)
            except ValueError as exc:
                return Outcome("ga4_event_parses", str(exc))
            line = json.dumps(_plain(normalized), ensure_ascii=False, separators=(",", ":"))
        return Outcome(line=line, numbers_as_text=walk.numbers_as_text)

    def _struct(self, value: dict, kind: Kind, parts: tuple, path: str, walk: _Walk) -> dict:
        fields = kind.field_map
        out = {}
        for name, child in value.items():
            child_path = f"{path}.{name}" if path else name
            if not parts and name in self.reserved:
                walk.problems.append(f"{name} is a column cdp adds to each event")
                continue
            if name not in fields:
                self.new_fields.setdefault((*parts, name), None)
                out[name] = child
                continue
            out[name] = self._value(child, fields[name], (*parts, name), child_path, walk)
        return out

    def _value(self, value, kind: Kind, parts: tuple, path: str, walk: _Walk):
        if value is None:
            return None
        if kind.sql == "JSON":
            return value
        if kind.is_struct:
            if not isinstance(value, dict):
                walk.problems.append(
                    f"{path} is not a RECORD but {_kind_of(value)}: {_shown(value)}"
                )
                return value
            return self._struct(value, kind, parts, path, walk)
        if kind.is_list:
            if not isinstance(value, list):
                walk.problems.append(
                    f"{path} is not an ARRAY but {_kind_of(value)}: {_shown(value)}"
                )
                return value
            return [
                self._value(item, kind.element, (*parts, None), f"{path}[{n}]", walk)
                for n, item in enumerate(value)
            ]
        return self._scalar(value, kind.sql, path, walk)

    def _scalar(self, value, sql: str, path: str, walk: _Walk):
        if sql.startswith(("MAP(", "UNION(")):
            return value
        if isinstance(value, dict | list):
            walk.problems.append(
                f"{path} is not {_GA4_NAMES.get(sql, sql)} but {_kind_of(value)}: {_shown(value)}"
            )
            return value
        if sql == "VARCHAR":
            if isinstance(value, str) and not isinstance(value, FloatText):
                return value
            walk.changed = True
            if isinstance(value, bool):
                return "true" if value else "false"
            walk.numbers_as_text += 1
            return str(value)  # the digits as written: never through a float
        if sql in INTEGERS:
            low, high = _RANGES[sql]
            number = None
            if isinstance(value, bool):
                pass
            elif isinstance(value, int):
                number = value
            elif isinstance(value, FloatText):  # 3.0 is an integer, 3.5 is not
                as_float = float(value)
                number = (
                    int(as_float) if math.isfinite(as_float) and as_float.is_integer() else None
                )
            elif _INTEGER_TEXT.fullmatch(value):
                number = int(value)
            if number is None or not low <= number <= high:
                walk.problems.append(
                    f"{path} is not {_GA4_NAMES.get(sql, 'an ' + sql)}: {_shown(value)}"
                )
                return value
            return value
        if sql in ("DOUBLE", "FLOAT"):
            if isinstance(value, bool):
                walk.problems.append(f"{path} is not a FLOAT64: {_shown(value)}")
                return value
            if isinstance(value, int | FloatText) or _FLOAT_TEXT.fullmatch(value):
                return value
            walk.problems.append(f"{path} is not a FLOAT64: {_shown(value)}")
            return value
        if sql == "BOOLEAN":
            if isinstance(value, bool) or (
                isinstance(value, str)
                and not isinstance(value, FloatText)
                and value.lower() in ("true", "false")
            ):
                return value
            walk.problems.append(f"{path} is not a BOOL: {_shown(value)}")
            return value
        return value  # a type the table took from a Parquet or Avro file: DuckDB judges it
