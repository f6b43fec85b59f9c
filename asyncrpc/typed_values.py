"""Annotated Python values to msgpack values and back, for typed interfaces.

Each annotation gets two functions, made once when an interface is first
used and then called for every value of that type:

- ``from_wire``: checks a decoded msgpack value against the annotation and
  builds the annotated type from it (a map becomes a dataclass, a str an
  enum member or a ``uuid.UUID``, an array a tuple); raises
  :class:`ValueMismatch` saying what was expected.
- ``to_wire``: turns a value of the annotated type into one msgpack can
  encode (a dataclass into a map, an enum into its value, a UUID into its
  str), or is ``None`` where the value already is one, so that a plain peer
  always sees ordinary msgpack.

The common scalar annotations (``int``, ``float``, ``str``, ``bytes``,
``bool``, ``None``, ``Any``) are checked inline; everything else goes
through msgspec, which is built for exactly this conversion and validation
and is several times faster than hand-written Python for nested types.
"""

from __future__ import annotations

import datetime
import types
import typing
from collections.abc import Callable
from typing import Any, Final

import msgpack
import msgspec

__all__ = ["ValueMismatch", "from_wire_for", "to_wire_for", "type_name"]

FromWire = Callable[[Any], Any]
ToWire = Callable[[Any], Any]

# Values msgpack (and asyncrpc's encoder) takes as they are: to_builtins leaves them alone.
_NATIVE: Final = (bytes, bytearray, datetime.datetime)


class ValueMismatch(ValueError):
    """A value that does not fit its annotation; the message says what was expected."""


def type_name(annotation: Any) -> str:
    """A short readable name for an annotation: ``int``, ``list[str]``, ``Point | None``."""
    if annotation is type(None) or annotation is None:
        return "None"
    if annotation is Any:
        return "Any"
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(argument) for argument in arguments)
    if origin is not None and arguments:
        name = getattr(origin, "__name__", None) or repr(origin).replace("typing.", "")
        return f"{name}[{', '.join(type_name(argument) for argument in arguments)}]"
    if annotation is Ellipsis:
        return "..."
    if isinstance(annotation, type):
        module = annotation.__module__
        # A few standard types read better with their module (datetime.datetime).
        return (
            f"{module}.{annotation.__name__}"
            if module in ("datetime", "uuid", "decimal")
            else annotation.__name__
        )
    return repr(annotation).replace("typing.", "")


def _exact(expected: type) -> FromWire:
    name = expected.__name__

    def check(value: Any) -> Any:
        if type(value) is expected:
            return value
        raise ValueMismatch(f"expected {name}, got {type(value).__name__}")

    return check


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:  # msgpack has no "float that happens to be whole": an int is a float here
        return float(value)
    raise ValueMismatch(f"expected float, got {kind.__name__}")


def _none(value: Any) -> Any:
    if value is None:
        return value
    raise ValueMismatch(f"expected None, got {type(value).__name__}")


def _anything(value: Any) -> Any:
    return value


def from_wire_for(annotation: Any) -> FromWire:
    """The function that checks and builds a value of ``annotation`` from its msgpack form."""
    if annotation is Any or annotation is object or annotation is typing.Any:
        return _anything
    if annotation is None or annotation is type(None):
        return _none
    if annotation is float:
        return _float
    if annotation in (int, str, bytes, bool, msgpack.ExtType):  # an ext value (Neovim's Buffer) as it came
        return _exact(annotation)
    decoder_type = annotation

    def convert(value: Any) -> Any:
        try:
            return msgspec.convert(value, decoder_type)
        except msgspec.ValidationError as exc:
            raise ValueMismatch(_readable(exc, annotation)) from None

    # msgspec refuses what it cannot convert to (a plain class with no
    # annotations): find that out now, at registration, not per call.
    try:
        info = msgspec.inspect.type_info(annotation)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot carry values of type {type_name(annotation)} over msgpack: {exc}") from None
    if _opaque(info):
        raise TypeError(
            f"cannot carry values of type {type_name(annotation)} over msgpack: "
            "use a dataclass, an enum, or builtin types"
        )
    return convert


def _opaque(info: msgspec.inspect.Type) -> bool:
    """True if ``info`` (or a type inside it) is a class msgspec does not know how to build."""
    if isinstance(info, msgspec.inspect.CustomType):
        return True
    inner: list[msgspec.inspect.Type] = []
    for name in ("item_type", "key_type", "value_type"):
        value = getattr(info, name, None)
        if isinstance(value, msgspec.inspect.Type):
            inner.append(value)
    for name in ("item_types", "types"):
        inner.extend(getattr(info, name, ()))
    inner.extend(field.type for field in getattr(info, "fields", ()))
    return any(_opaque(item) for item in inner)


def _readable(exc: msgspec.ValidationError, annotation: Any) -> str:
    text = str(exc)
    # msgspec writes "Expected `int`, got `str` - at `$.x`"; say it in plain words.
    text = text.replace("`", "")
    if text.startswith("Expected "):
        text = "expected " + text[len("Expected ") :]
    text = text.replace(" - at $", " at ")
    if not text.startswith("expected"):
        text = f"expected {type_name(annotation)}: {text}"
    return text


def _is_native(annotation: Any) -> bool:
    """True when a value of ``annotation`` is already something msgpack encodes as it should."""
    if annotation in (Any, object, None, type(None), int, float, str, bytes, bool, datetime.datetime):
        return True
    if annotation is msgpack.ExtType:  # msgpack encodes it as the ext value it is, not as a tuple
        return True
    origin = typing.get_origin(annotation)
    if origin in (list, dict, typing.Union, types.UnionType):
        return all(_is_native(argument) for argument in typing.get_args(annotation))
    return False


def to_wire_for(annotation: Any) -> ToWire | None:
    """The function that turns a value of ``annotation`` into msgpack values, or ``None``
    where it already is made of them."""
    if _is_native(annotation):
        return None

    def to_wire(value: Any) -> Any:
        return msgspec.to_builtins(value, builtin_types=_NATIVE)

    return to_wire
