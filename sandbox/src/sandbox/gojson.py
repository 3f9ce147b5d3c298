"""Go's encoding/json, as far as the BCS services expose it (the Kubernetes front end
shares ``json_kind``, since kube-apiserver decodes with the same package).

The driver and the scheduler decode request bodies with Go's encoding/json, and
their error messages reach the client verbatim (for example CheckKind's
"Unmarshal TypeMeta failed: invalid character '}' looking for beginning of
object key string", bcs-common/common/util/check.go).  So the sandbox checks
bodies the way Go does:

* ``syntax_error(text)`` runs Go's scanner (encoding/json/scanner.go) and
  returns its message, or None for valid JSON;
* ``decode(value, T)`` maps an already parsed value onto a Go type described
  by the small schema classes below, recording the first UnmarshalTypeError
  ("json: cannot unmarshal string into Go struct field ServicePort.spec.ports.
  servicePort of type int") like Go does, matching field names
  case-insensitively and ignoring unknown fields;
* ``encode(go_value, T)`` marshals such a value back the way Go would
  (declared field order, zero values, ``omitempty``), which is what the
  scheduler stores and what storage serves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# -- syntax -------------------------------------------------------------------------


def _quote_char(c: str) -> str:
    """Go's quoteChar: how the scanner names the offending byte."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\"}
    if c in escapes:
        return f"'{escapes[c]}'"
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"'\\x{ord(c):02x}'"
    return f"'{c}'"


class _Syntax(Exception):
    pass


_SPACE = " \t\r\n"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_LITERALS = {"t": ("true", "literal true"), "f": ("false", "literal false"), "n": ("null", "literal null")}


def syntax_error(text: str | bytes) -> str | None:
    """The message Go's json.Unmarshal gives for malformed input, or None when the input is valid."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    i, n = 0, len(text)

    def err(c: str, context: str) -> _Syntax:
        return _Syntax(f"invalid character {_quote_char(c)} {context}")

    def skip_space(j: int) -> int:
        while j < n and text[j] in _SPACE:
            j += 1
        return j

    def value(j: int) -> int:
        """Scan one value starting at j (spaces skipped); return the index after it."""
        j = skip_space(j)
        if j >= n:
            raise _Syntax("unexpected end of JSON input")
        c = text[j]
        if c == "{":
            j = skip_space(j + 1)
            if j >= n:
                raise _Syntax("unexpected end of JSON input")
            if text[j] == "}":
                return j + 1
            while True:
                j = skip_space(j)
                if j >= n:
                    raise _Syntax("unexpected end of JSON input")
                if text[j] != '"':
                    raise err(text[j], "looking for beginning of object key string")
                j = string(j)
                j = skip_space(j)
                if j >= n:
                    raise _Syntax("unexpected end of JSON input")
                if text[j] != ":":
                    raise err(text[j], "after object key")
                j = value(j + 1)
                j = skip_space(j)
                if j >= n:
                    raise _Syntax("unexpected end of JSON input")
                if text[j] == ",":
                    j += 1
                    continue
                if text[j] == "}":
                    return j + 1
                raise err(text[j], "after object key:value pair")
        if c == "[":
            j = skip_space(j + 1)
            if j >= n:
                raise _Syntax("unexpected end of JSON input")
            if text[j] == "]":
                return j + 1
            while True:
                j = value(j)
                j = skip_space(j)
                if j >= n:
                    raise _Syntax("unexpected end of JSON input")
                if text[j] == ",":
                    j += 1
                    continue
                if text[j] == "]":
                    return j + 1
                raise err(text[j], "after array element")
        if c == '"':
            return string(j)
        if c == "-" or c in _DIGITS:
            return number(j)
        if c in _LITERALS:
            word, context = _LITERALS[c]
            for k, expected in enumerate(word[1:], start=1):
                if j + k >= n:
                    raise _Syntax("unexpected end of JSON input")
                if text[j + k] != expected:
                    raise err(text[j + k], f"in {context} (expecting '{expected}')")
            return j + len(word)
        raise err(c, "looking for beginning of value")

    def string(j: int) -> int:
        j += 1
        while j < n:
            c = text[j]
            if c == '"':
                return j + 1
            if c == "\\":
                j += 1
                if j >= n:
                    break
                e = text[j]
                if e in 'bfnrt\\/"':
                    j += 1
                    continue
                if e != "u":
                    raise err(e, "in string escape code")
                for k in range(1, 5):
                    if j + k >= n:
                        raise _Syntax("unexpected end of JSON input")
                    if text[j + k] not in _HEX:
                        raise err(text[j + k], "in \\u hexadecimal character escape")
                j += 5
                continue
            if ord(c) < 0x20:
                raise err(c, "in string literal")
            j += 1
        raise _Syntax("unexpected end of JSON input")

    def number(j: int) -> int:
        if text[j] == "-":
            j += 1
            if j >= n:
                raise _Syntax("unexpected end of JSON input")
            if text[j] not in _DIGITS:
                raise err(text[j], "in numeric literal")
        if text[j] == "0":
            j += 1
        else:
            while j < n and text[j] in _DIGITS:
                j += 1
        if j < n and text[j] == ".":
            j += 1
            if j >= n:
                raise _Syntax("unexpected end of JSON input")
            if text[j] not in _DIGITS:
                raise err(text[j], "after decimal point in numeric literal")
            while j < n and text[j] in _DIGITS:
                j += 1
        if j < n and text[j] in "eE":
            j += 1
            if j < n and text[j] in "+-":
                j += 1
            if j >= n:
                raise _Syntax("unexpected end of JSON input")
            if text[j] not in _DIGITS:
                raise err(text[j], "in exponent of numeric literal")
            while j < n and text[j] in _DIGITS:
                j += 1
        return j

    try:
        i = value(0)
        i = skip_space(i)
        if i < n:
            raise err(text[i], "after top-level value")
    except _Syntax as e:
        return str(e)
    except RecursionError:
        return "exceeded max depth"
    return None


class Number(str):
    """A JSON number kept as its literal, so that decoding into int can reject 3.0 as Go does."""


def loads(text: str | bytes):
    """Parse JSON already known to be valid; numbers stay literals, duplicate keys: last wins (as Go)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return json.loads(text, parse_int=Number, parse_float=Number, parse_constant=Number)


# -- types --------------------------------------------------------------------------


class GoType:
    def zero(self):
        return None


@dataclass
class Scalar(GoType):
    name: str  # Go type name as Type.String() prints it, e.g. "int", "types.BcsDataType"
    kind: str  # "string", "int", "uint", "bool", "float", "time"
    bits: int = 64

    def zero(self):
        return {"string": "", "int": 0, "uint": 0, "bool": False, "float": 0.0, "time": "0001-01-01T00:00:00Z"}[
            self.kind
        ]


@dataclass
class Map(GoType):
    elem: GoType

    @property
    def name(self) -> str:
        return f"map[string]{self.elem.name}"


@dataclass
class Slice(GoType):
    elem: GoType

    @property
    def name(self) -> str:
        return f"[]{self.elem.name}"


@dataclass
class Ptr(GoType):
    elem: GoType

    @property
    def name(self) -> str:
        return self.elem.name  # Go allocates and decodes into the element; errors name it


@dataclass
class Any(GoType):
    """interface{} (or a type the sandbox does not model): kept as parsed."""

    name: str = "interface {}"


@dataclass
class Field:
    go: str  # Go field name (what the error context reports for the struct)
    json: str  # JSON key ("" with inline=True: an embedded struct whose fields are promoted)
    type: GoType
    omitempty: bool = False
    inline: bool = False


@dataclass
class Struct(GoType):
    name: str
    fields: list[Field] = field(default_factory=list)

    def zero(self):
        return {f.go: f.type.zero() for f in self.fields}

    def flat(self) -> list[tuple[Field, tuple[str, ...]]]:
        """JSON-visible fields with the Go path to them (promoting embedded structs)."""
        out = []
        for f in self.fields:
            if f.inline:
                assert isinstance(f.type, Struct)
                out += [(g, (f.go,) + p) for g, p in f.type.flat()]
            else:
                out.append((f, (f.go,)))
        return out


STRING = Scalar("string", "string")
INT = Scalar("int", "int")
INT32 = Scalar("int32", "int", 32)
INT64 = Scalar("int64", "int")
UINT32 = Scalar("uint32", "uint", 32)
BOOL = Scalar("bool", "bool")
TIME = Scalar("time.Time", "time")


def named(name: str, base: Scalar) -> Scalar:
    return Scalar(name, base.kind, base.bits)


# -- decode -------------------------------------------------------------------------


class DecodeError(Exception):
    pass


def json_kind(v) -> str:
    """The word Go's UnmarshalTypeError uses for a JSON value ('cannot unmarshal <kind> into ...')."""
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Number):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null"


class _Decoder:
    def __init__(self):
        self.first_error: str | None = None
        self.struct = ""  # innermost struct type being decoded (errorContext.Struct)
        self.path: list[str] = []  # JSON field names from the top (errorContext.FieldStack)

    def fail(self, value_desc: str, t: GoType) -> None:
        if self.first_error is not None:
            return
        if self.struct and self.path:
            where = f"Go struct field {self.struct}.{'.'.join(self.path)}"
        else:
            where = "Go value"
        self.first_error = f"json: cannot unmarshal {value_desc} into {where} of type {t.name}"

    def decode(self, v, t: GoType, current):
        if v is None:  # null: no-op for values, nil for pointers, maps and slices
            return None if isinstance(t, (Ptr, Map, Slice, Any)) else current
        if isinstance(t, Any):
            return v
        if isinstance(t, Ptr):
            return self.decode(v, t.elem, t.elem.zero() if current is None else current)
        if isinstance(t, Scalar):
            return self.scalar(v, t, current)
        if isinstance(t, Map):
            if not isinstance(v, dict):
                self.fail(json_kind(v), t)
                return current
            out = dict(current or {})
            for k, item in v.items():
                out[k] = self.decode(item, t.elem, t.elem.zero())
            return out
        if isinstance(t, Slice):
            if not isinstance(v, list):
                self.fail(json_kind(v), t)
                return current
            return [self.decode(item, t.elem, t.elem.zero()) for item in v]
        if isinstance(t, Struct):
            if not isinstance(v, dict):
                self.fail(json_kind(v), t)
                return current
            out = current if isinstance(current, dict) else t.zero()
            flat = t.flat()
            outer = self.struct
            for key, item in v.items():
                match = next((fp for fp in flat if fp[0].json == key), None) or next(
                    (fp for fp in flat if fp[0].json.casefold() == key.casefold()), None
                )
                if match is None:
                    continue  # Go ignores unknown fields
                f, gopath = match
                self.struct, saved = t.name.split(".")[-1], list(self.path)
                self.path.append(f.json)
                target = out
                for step in gopath[:-1]:
                    target = target[step]
                target[gopath[-1]] = self.decode(item, f.type, target[gopath[-1]])
                self.path = saved
                self.struct = outer
            return out
        raise TypeError(t)

    def scalar(self, v, t: Scalar, current):
        kind = json_kind(v)
        if t.kind in ("string", "time"):
            if kind != "string":
                self.fail(kind, t)
                return current
            return str(v)
        if t.kind == "bool":
            if kind != "bool":
                self.fail(kind, t)
                return current
            return v
        # numbers
        if kind != "number":
            self.fail(kind, t)
            return current
        text = str(v)
        if t.kind == "float":
            return float(text)
        if not re.fullmatch(r"-?\d+", text):
            self.fail(f"number {text}", t)
            return current
        value = int(text)
        lo, hi = (0, 2**t.bits - 1) if t.kind == "uint" else (-(2 ** (t.bits - 1)), 2 ** (t.bits - 1) - 1)
        if not lo <= value <= hi:
            self.fail(f"number {text}", t)
            return current
        return value


def decode(value, t: GoType):
    """Decode a parsed JSON value into a Go value of type t; returns (go_value, first_error_or_None)."""
    d = _Decoder()
    out = d.decode(value, t, t.zero())
    return out, d.first_error


def unmarshal(text: str | bytes, t: GoType):
    """json.Unmarshal: (go_value, error message or None)."""
    problem = syntax_error(text)
    if problem:
        return None, problem
    return decode(loads(text), t)


# -- encode -------------------------------------------------------------------------


def _empty(v, t: GoType) -> bool:
    if isinstance(t, Struct):
        return False  # Go never treats a struct as empty
    if isinstance(t, Scalar) and t.kind == "time":
        return False  # time.Time is a struct
    return v is None or v == "" or v is False or v == 0 or v == [] or v == {}


def encode(v, t: GoType):
    """The JSON value Go's json.Marshal produces for a Go value of type t."""
    if isinstance(t, Any):
        return _plain(v)
    if isinstance(t, Ptr):
        return None if v is None else encode(v, t.elem)
    if isinstance(t, Scalar):
        return v
    if isinstance(t, Map):
        return None if v is None else {k: encode(x, t.elem) for k, x in v.items()}
    if isinstance(t, Slice):
        return None if v is None else [encode(x, t.elem) for x in v]
    if isinstance(t, Struct):
        out = {}
        for f, gopath in t.flat():
            x = v
            for step in gopath:
                x = x[step]
            if f.omitempty and _empty(x, f.type):
                continue
            out[f.json] = encode(x, f.type)
        return out
    raise TypeError(t)


def _plain(v):
    """Parsed JSON with Number literals turned back into ints/floats."""
    if isinstance(v, Number):
        return int(v) if re.fullmatch(r"-?\d+", v) else float(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v
