"""Wire objects described by their fields: checked when built, read and written from metadata.

A frame declares each member once, as a dataclass field whose metadata says
what kind of value it holds and, where it differs, its name on the wire::

    @wire_codec
    @dataclass(frozen=True, slots=True)
    class Say(Request):
        TYPE: ClassVar[str] = "say"
        room: str = field(metadata=wire(ROOM_NAME))
        text: str = field(metadata=wire(TEXT))
        id: str | None = field(default=None, metadata=wire(MESSAGE_ID))

From that one declaration :func:`wire_codec` derives three things, so they can
never disagree: the check run when the object is built (a bad value raises
:class:`~chattycat.errors.LocalProtocolError`: the code building it has a bug),
``from_dict`` (the same checks on a peer's JSON object raise
:class:`~chattycat.errors.RemoteProtocolError` with the same code and text: the
peer broke the protocol), and ``to_dict``. A member whose default is None or
False is left out of the JSON object while it holds that default.

The server builds and writes a frame per stored message and per fan-out, so,
as :mod:`dataclasses` does for ``__init__``, the three are compiled once per
class into straight-line functions rather than loops over the fields, and
each kind offers a cheap test (``fast``) that passes the common valid values
without a call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, TypeGuard, TypeVar

from chattycat.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from chattycat.protocol.names import NAME_RULE, ROOM_RULE, is_valid_name, is_valid_room

__all__ = [
    "COUNT",
    "FLAG",
    "MAX_WIRE_INT",
    "NUMBER",
    "OPTIONAL_STRING",
    "REQUIRED",
    "ROOM_NAME",
    "STRING",
    "USER_NAME",
    "JSONObject",
    "Kind",
    "WireObject",
    "bad",
    "has_lone_surrogate",
    "integer",
    "is_int",
    "list_of",
    "string",
    "wire",
    "wire_codec",
]

JSONObject = dict[str, Any]
#: A member check: raises LocalProtocolError naming the member (its wire key).
Check = Callable[[Any, str], None]
W = TypeVar("W", bound="WireObject")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: ``Kind.absent`` for a member that has no value to take when the peer leaves it out.
REQUIRED: Final = _Required()

# Lone surrogates survive json.loads ("\ud800") but cannot be encoded as UTF-8,
# so a string holding one could never be sent on; reject it at the door.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Kind:
    """What one member may hold, and how it crosses the wire when JSON alone will not do.

    ``absent`` is the value read when the peer leaves the member out or sends
    null (REQUIRED: ``check`` judges the None). ``fast``, if given, is a Python
    expression over ``v`` that is true for the usual valid values (an ASCII
    string, a small int); ``check`` runs only when it is false, and either
    raises or accepts the rarer valid value. ``from_wire`` reads and checks a wire value
    that needs converting; ``to_wire`` writes one back.
    """

    check: Check
    absent: Any = REQUIRED
    fast: str = ""
    to_wire: Callable[[Any], Any] | None = None
    from_wire: Callable[[Any, str], Any] | None = None


def wire(kind: Kind, name: str | None = None) -> Mapping[str, Any]:
    """Field metadata: ``kind`` judges the value; ``name`` is the wire key if not the field's."""
    return {"kind": kind, "wire": name}


def bad(message: str, code: ErrorCode = ErrorCode.BAD_REQUEST) -> LocalProtocolError:
    """The error a broken rule raises; ``from_dict`` turns it into the peer's error."""
    return LocalProtocolError(code, message)


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds a lone surrogate, which UTF-8 cannot encode."""
    return not text.isascii() and _SURROGATE_RE.search(text) is not None


def is_int(value: object) -> TypeGuard[int]:
    """True for an integer that is not a bool (``true`` is not a number in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------
# Kinds of member. Each check's text is the wire text of the error it causes.


def string(
    max_chars: int | None = None, *, optional: bool = False, non_empty: bool = False
) -> Kind:
    """A string of at most ``max_chars`` characters, never holding a lone surrogate."""

    def check(value: object, key: str) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            raise bad(f"'{key}' is required" if value is None else f"'{key}' must be a string")
        if max_chars is not None and len(value) > max_chars:
            raise bad(f"'{key}' is longer than {max_chars} characters")
        if has_lone_surrogate(value):
            raise bad(f"'{key}' is not valid Unicode text")
        if non_empty and not value:
            raise bad(f"'{key}' must not be empty")

    fast = "type(v) is str and v.isascii()"
    if max_chars is not None:
        fast += f" and {'0 < ' if non_empty else ''}len(v) <= {max_chars}"
    elif non_empty:
        fast += " and v != ''"
    return Kind(check, absent=None if optional else REQUIRED, fast=_or_none(fast, optional))


#: The largest integer a peer may send: a signed 64-bit value, what SQLite and
#: every other store can hold. A larger one is a peer's error (``bad_request``),
#: never an overflow deep in the server.
MAX_WIRE_INT = 2**63 - 1


def integer(
    lo: int = 0, hi: int | None = MAX_WIRE_INT, *, optional: bool = False,
    absent: object = REQUIRED,
) -> Kind:
    """An integer in ``lo..hi``; ``absent`` is taken when the peer leaves it out."""

    def check(value: object, key: str) -> None:
        if value is None and optional:
            return
        if not is_int(value):
            raise bad(f"'{key}' is required" if value is None else f"'{key}' must be an integer")
        if value < lo or (hi is not None and value > hi):
            raise bad(f"'{key}' is out of range")

    fast = f"type(v) is int and {lo} <= v" + (f" <= {hi}" if hi is not None else "")
    if optional and absent is REQUIRED:
        absent = None
    return Kind(check, absent=absent, fast=_or_none(fast, optional))


def _or_none(fast: str, optional: bool) -> str:
    return f"v is None or ({fast})" if optional else fast


def _check_number(value: object, key: str) -> None:
    # NaN passes here and is refused when written (allow_nan=False): JSON has no
    # NaN, so a peer can never send one, and a local one is caught on the way out.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad(f"'{key}' must be a number")


def _check_flag(value: object, key: str) -> None:
    if not isinstance(value, bool):
        raise bad(f"'{key}' must be true or false")


def _check_user_name(value: object, key: str) -> None:
    if not isinstance(value, str):
        raise bad(f"'{key}' must be a string")
    if not is_valid_name(value):
        raise bad(NAME_RULE, ErrorCode.BAD_NAME)


def _check_room_name(value: object, key: str) -> None:
    if not isinstance(value, str):
        raise bad(f"'{key}' must be a string")
    if not is_valid_room(value):
        raise bad(ROOM_RULE, ErrorCode.BAD_ROOM)


#: Any string (the usual member of an event: checked by JSON type only).
STRING: Final = string()
#: Any string, or left out.
OPTIONAL_STRING: Final = string(optional=True)
#: An integer >= 0 (a seq, a size, a version).
COUNT: Final = integer()
#: A JSON number (int or float, not bool).
NUMBER: Final = Kind(_check_number, fast="type(v) is float or type(v) is int")
#: true or false; left out of the JSON object while false.
FLAG: Final = Kind(_check_flag, absent=False, fast="v is False or v is True")
#: A user name (PROTOCOL 2); a bad one is ``bad_name``.
USER_NAME: Final = Kind(_check_user_name)
#: A room name (PROTOCOL 2); a bad one is ``bad_room``.
ROOM_NAME: Final = Kind(_check_room_name)


def list_of(item: type[WireObject]) -> Kind:
    """A JSON list of ``item`` objects, held as a tuple (frames stay hashable)."""

    def check(value: object, key: str) -> None:
        if not isinstance(value, tuple) or not all(isinstance(entry, item) for entry in value):
            raise bad(f"'{key}' must be a tuple of {item.__name__}")

    def from_wire(value: object, key: str) -> tuple[WireObject, ...]:
        if not isinstance(value, list):
            raise bad(f"'{key}' must be a list")
        if not all(isinstance(entry, dict) for entry in value):
            raise bad("list entries must be objects")
        return tuple(item.from_dict(entry) for entry in value)

    def to_wire(value: tuple[WireObject, ...]) -> list[JSONObject]:
        return [entry.to_dict() for entry in value]

    return Kind(check, to_wire=to_wire, from_wire=from_wire)


# --------------------------------------------------------------------------
# Wire objects


class WireObject:
    """Base of every JSON object of the protocol; concrete classes carry @wire_codec."""

    __slots__ = ()

    def __post_init__(self) -> None:
        # Replaced in each concrete class by its compiled member checks; defined
        # here so that @dataclass makes __init__ call it.
        raise TypeError(f"{type(self).__name__} needs @wire_codec")

    def to_dict(self) -> JSONObject:
        """The JSON object of this value (members at their None/False default left out)."""
        raise TypeError(f"{type(self).__name__} needs @wire_codec")

    @classmethod
    def from_dict(cls: type[W], obj: JSONObject) -> W:
        """Read a peer's JSON object, raising RemoteProtocolError for any broken rule."""
        read: Callable[[JSONObject], W] | None = cls.__dict__.get("_read")
        if read is None:
            raise TypeError(f"{cls.__name__} needs @wire_codec")
        try:
            return read(obj)
        except LocalProtocolError as exc:
            # The checks speak as if we built the value; here the peer did.
            raise RemoteProtocolError(exc.code, exc.message) from None


@dataclass(frozen=True, slots=True)
class _Member:
    attr: str
    key: str
    kind: Kind
    omit_when: object  # the default that leaves the member out (None or False), else REQUIRED


def wire_codec(cls: type[W]) -> type[W]:
    """Derive the member checks, ``from_dict`` and ``to_dict`` of a wire dataclass.

    ``cls.WIRE_ORDER`` (attribute names) orders the JSON members when field
    order will not do; ``cls.check_combination(self)`` checks rules that span
    members, after each member is checked.
    """
    members = _members(cls)
    by_attr = {m.attr: m for m in members}
    ordered = [by_attr[attr] for attr in getattr(cls, "WIRE_ORDER", by_attr)]
    combined: Callable[[Any], None] | None = getattr(cls, "check_combination", None)
    env: dict[str, Any] = {"cls": cls, "combined": combined, "new": object.__new__}
    for i, m in enumerate(members):
        # Slot descriptors set a frozen object's members without __setattr__,
        # which is how a checked read is built without checking it again.
        env |= {f"check{i}": m.kind.check, f"absent{i}": m.kind.absent,
                f"from_wire{i}": m.kind.from_wire, f"to_wire{i}": m.kind.to_wire,
                f"set{i}": getattr(cls, m.attr).__set__}  # fmt: skip
    derived = {
        "__post_init__": _compile(cls, "__post_init__", _check_lines(members, combined), env),
        "_read": staticmethod(_compile(cls, "_read", _read_lines(members, combined), env)),
        "to_dict": _compile(cls, "to_dict", _to_dict_lines(cls, members, ordered), env),
    }
    for name, function in derived.items():
        setattr(cls, name, function)
    return cls


def _members(cls: type) -> list[_Member]:
    out = []
    for f in fields(cls):
        kind = f.metadata.get("kind")
        if not isinstance(kind, Kind):
            raise TypeError(f"{cls.__name__}.{f.name} has no wire(...) metadata")
        omit = f.default if f.default is None or f.default is False else REQUIRED
        out.append(_Member(f.name, f.metadata.get("wire") or f.name, kind, omit))
    return out


def _check_lines(members: list[_Member], combined: object) -> list[str]:
    lines = ["def __post_init__(self):", "  pass"]
    for i, m in enumerate(members):
        lines += [f"  v = self.{m.attr}", f"  {_check_call(i, m)}"]
    if combined is not None:
        lines.append("  combined(self)")
    return lines


def _check_call(i: int, m: _Member) -> str:
    call = f"check{i}(v, {m.key!r})"
    return f"if not ({m.kind.fast}): {call}" if m.kind.fast else call


def _read_lines(members: list[_Member], combined: object) -> list[str]:
    # Members are checked in field order, so the first broken rule is the one
    # reported (a bad name before a bad resume room, as in version 0.1).
    lines = ["def _read(obj):", "  frame = new(cls)"]
    for i, m in enumerate(members):
        if m.kind.from_wire is not None:
            read = f"v = from_wire{i}(v, {m.key!r})"
        else:
            read = _check_call(i, m)
        lines.append(f"  v = obj.get({m.key!r})")
        if m.kind.absent is REQUIRED:
            lines.append(f"  {read}")
        else:
            lines += [f"  if v is None: v = absent{i}", "  else:", f"    {read}"]
        lines.append(f"  set{i}(frame, v)")
    if combined is not None:
        lines.append("  combined(frame)")
    return [*lines, "  return frame"]


def _to_dict_lines(cls: type, members: list[_Member], ordered: list[_Member]) -> list[str]:
    index = {m.attr: i for i, m in enumerate(members)}
    type_name: str | None = getattr(cls, "TYPE", None)
    # Members always present up to the first optional one go in the literal
    # (one dict build); the rest are added in order, each only when set.
    literal = [f"'type': {type_name!r}"] if type_name else []
    lines: list[str] = []
    for m in ordered:
        i, value = index[m.attr], f"self.{m.attr}"
        if m.kind.to_wire is not None:
            value = f"to_wire{i}({value})"
        if m.omit_when is REQUIRED and not lines:
            literal.append(f"{m.key!r}: {value}")
        elif m.omit_when is REQUIRED:
            lines.append(f"  out[{m.key!r}] = {value}")
        else:
            lines.append(f"  if self.{m.attr} is not {m.omit_when!r}: out[{m.key!r}] = {value}")
    return ["def to_dict(self):", f"  out = {{{', '.join(literal)}}}", *lines, "  return out"]


def _compile(cls: type, name: str, lines: list[str], env: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<{cls.__name__}.{name}>", "exec"), env, namespace)
    function = namespace[name]
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    return function
