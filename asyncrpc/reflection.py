"""Reflection: what a connection's handlers are, as one msgpack-able answer.

Every asyncrpc server (and a client, for what it registered) answers the
request :data:`~asyncrpc.wire.extensions.DESCRIBE_METHOD` (params ``[]``)
when no handler has that name, with :func:`describe`'s answer::

    {"protocol": "asyncrpc", "version": 1,
     "methods": [{"name", "interface", "doc", "params": [{"name", "annotation", "schema",
                  "has_default", "default"?, "variadic"}], "result": {"annotation", "schema"},
                  "kind"}],
     "interfaces": [{"name", "namespace", "doc", "methods"}],
     "components": {name: JSON Schema}}

Methods of a typed interface are described from its declaration; plain
handlers from their signature and whatever annotations they have. Types are
given twice: as a readable Python annotation, and as the JSON Schema msgspec
makes of it (dataclasses and enums as ``components``, referred to as
``{"$ref": "#/$defs/Name"}``). What the annotations do not say is ``"Any"``
and ``{}`` (no annotation, a type with no JSON Schema); a handler that cannot
be described at all (its signature or docstring raises) fails the whole
request with :class:`~asyncrpc.DescribeFailed` naming it, rather than
leaving a partial answer that looks whole.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec

from asyncrpc.errors import DescribeFailed
from asyncrpc.interface import METHOD_SPEC_ATTR, MethodSpec
from asyncrpc.typed_values import type_name
from asyncrpc.wire import extensions as ext

if TYPE_CHECKING:
    from asyncrpc.dispatch import Dispatcher

__all__ = ["DOC_LIMIT", "describe"]

DOC_LIMIT: Final = 4000
"""Characters of a docstring the answer carries."""

_REF_TEMPLATE: Final = "#/$defs/{name}"
_SCALARS: Final = (int, float, str, bytes, bool, type(None))


def _with_formats(annotation: Any) -> Any:
    """``annotation`` with each ``datetime`` marked time-zone aware, so that its schema says
    ``"format": "date-time"`` (msgspec says only ``"string"`` of a bare one; on the wire it is
    a msgpack timestamp). Fields of dataclasses are left as they are."""
    if annotation is datetime.datetime:
        return Annotated[datetime.datetime, msgspec.Meta(tz=True)]
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if not arguments:
        return annotation
    marked = tuple(argument if argument is Ellipsis else _with_formats(argument) for argument in arguments)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[marked]  # noqa: UP007 - built from a tuple
    if origin in (list, dict, tuple, set, frozenset):
        return origin[marked]
    return annotation


class _Schemas:
    """JSON Schemas for annotations, sharing one table of components."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, annotation: Any) -> dict[str, Any]:
        if annotation is Any or annotation is inspect.Parameter.empty:
            return {}
        try:
            (schema,), components = msgspec.json.schema_components(
                [_with_formats(annotation)], ref_template=_REF_TEMPLATE
            )
        except Exception:  # a type msgspec cannot describe: say nothing rather than fail
            return {}
        for name, component in components.items():
            if name not in self.components:
                self.components[name] = component
                self._mark_dates(annotation, name, component)
        return dict(schema)

    def _mark_dates(self, annotation: Any, name: str, component: dict[str, Any]) -> None:
        """Give the datetime fields of the dataclass component ``name`` their date-time format."""
        for cls in _dataclasses_in(annotation):
            if cls.__name__ != name:
                continue
            try:
                hints = typing.get_type_hints(cls)
            except Exception:
                return
            properties = component.get("properties", {})
            for field in dataclasses.fields(cls):
                hint = hints.get(field.name)
                if field.name in properties and hint is not None and _with_formats(hint) is not hint:
                    (marked,), _ = msgspec.json.schema_components(
                        [_with_formats(hint)], ref_template=_REF_TEMPLATE
                    )
                    if "default" in properties[field.name]:
                        marked = {**marked, "default": properties[field.name]["default"]}
                    properties[field.name] = marked


def _dataclasses_in(annotation: Any, seen: set[int] | None = None) -> list[type]:
    """The dataclasses ``annotation`` names, and those their fields name, once each."""
    seen = set() if seen is None else seen
    if id(annotation) in seen:
        return []
    seen.add(id(annotation))
    found: list[type] = []
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        found.append(annotation)
        try:
            hints = typing.get_type_hints(annotation)
        except Exception:
            hints = {}
        for hint in hints.values():
            found.extend(_dataclasses_in(hint, seen))
    for argument in typing.get_args(annotation):
        found.extend(_dataclasses_in(argument, seen))
    return found


def _cut(text: str) -> str:
    """``text``, cut to :data:`DOC_LIMIT` characters (an ellipsis last where it was cut)."""
    return text if len(text) <= DOC_LIMIT else text[: DOC_LIMIT - 1] + "\u2026"


def _doc(fn: Any) -> str:
    return _cut(inspect.getdoc(fn) or "")


def _default(value: Any) -> tuple[bool, Any]:
    """Whether ``value`` can travel as a default, and its msgpack form."""
    if value is None or type(value) in _SCALARS:
        return True, value
    try:
        built = msgspec.to_builtins(value, builtin_types=(bytes,))
        msgspec.msgpack.encode(built)
    except Exception:
        return False, None
    return True, built


def _parameter(
    name: str, annotation: Any, default: Any, *, variadic: bool, schemas: _Schemas
) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": name,
        "annotation": "Any" if annotation is inspect.Parameter.empty else type_name(annotation),
        "schema": schemas.of(annotation),
        "variadic": variadic,
        "has_default": default is not inspect.Parameter.empty,
    }
    if default is not inspect.Parameter.empty:
        fits, value = _default(default)
        if fits:
            described["default"] = value
    return described


def _typed(name: str, spec: MethodSpec, interface: str, kind: str, schemas: _Schemas) -> dict[str, Any]:
    params = [
        _parameter(
            p.name,
            p.annotation,
            p.default if p.has_default else inspect.Parameter.empty,
            variadic=False,
            schemas=schemas,
        )
        for p in spec.parameters
    ]
    if spec.variadic is not None:
        params.append(
            _parameter(
                spec.variadic.name,
                spec.variadic.annotation,
                inspect.Parameter.empty,
                variadic=True,
                schemas=schemas,
            )
        )
    return {
        "name": name,
        "interface": interface,
        "doc": _cut(spec.doc),
        "params": params,
        "result": {"annotation": type_name(spec.result), "schema": schemas.of(spec.result)},
        "kind": kind,
    }


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s annotations, resolved: a callable object's are its ``__call__``'s. Annotations naming
    what is not defined are used as written (``{}`` here), or not at all."""
    for target in (fn, getattr(fn, "__call__", None)):  # noqa: B004 - a callable object's method
        if target is None:
            continue
        try:
            return typing.get_type_hints(target)
        except Exception:
            continue
    return {}


def _plain(name: str, fn: Callable[..., Any], kind: str, schemas: _Schemas) -> dict[str, Any]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature
        signature = inspect.Signature([inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)])
    hints = _hints(fn)
    params = []
    for parameter in signature.parameters.values():
        if parameter.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD):
            continue  # not reachable by position
        annotation = hints.get(parameter.name, parameter.annotation)
        variadic = parameter.kind is inspect.Parameter.VAR_POSITIONAL
        params.append(
            _parameter(parameter.name, annotation, parameter.default, variadic=variadic, schemas=schemas)
        )
    result = hints.get("return", signature.return_annotation)
    return {
        "name": name,
        "interface": None,
        "doc": _doc(fn),
        "params": params,
        "result": {
            "annotation": "Any" if result is inspect.Signature.empty else type_name(result),
            "schema": schemas.of(result),
        },
        "kind": kind,
    }


def describe(dispatcher: Dispatcher) -> dict[str, Any]:
    """The answer to the describe request: every method ``dispatcher`` answers.

    Raises:
        DescribeFailed: a handler cannot be described (what describing it
            raised is the ``__cause__``).
    """
    schemas = _Schemas()
    methods: list[dict[str, Any]] = []
    # One entry per declaration and namespace it was registered under (twice under two).
    interfaces: dict[tuple[type, str | None], dict[str, Any]] = {}
    for name, handler in sorted(dispatcher.handlers().items()):
        if name in (ext.HELLO_METHOD, ext.DESCRIBE_METHOD):
            continue
        kind = handler.kind.value
        try:
            attached = getattr(handler.fn, METHOD_SPEC_ATTR, None)
            if attached is not None:
                spec, declaration, namespace = attached
                methods.append(_typed(name, spec, declaration.__name__, kind, schemas))
                entry = interfaces.get((declaration, namespace))
                if entry is None:
                    entry = interfaces[declaration, namespace] = {
                        "name": declaration.__name__,
                        "namespace": namespace,
                        "doc": _cut(inspect.cleandoc(vars(declaration).get("__doc__") or "")),
                        "methods": [],
                    }
                entry["methods"].append(name)
            else:
                methods.append(_plain(name, handler.fn, kind, schemas))
        except Exception as exc:  # a partial answer would look whole: say which one, and why
            raise DescribeFailed(f"method {name!r} cannot be described: {type(exc).__name__}: {exc}") from exc
    return {
        "protocol": ext.PROTOCOL_NAME,
        "version": ext.PROTOCOL_VERSION,
        "methods": methods,
        "interfaces": list(interfaces.values()),
        "components": schemas.components,
    }
