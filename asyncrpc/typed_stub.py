"""Typed clients for interfaces: ``client.stub(Calc)``, and :func:`start` for call handles.

``client.stub(Calc)`` returns an instance of a class made from ``Calc`` (one
per interface, made once), so the type checker's view, "a ``Calc``", is
what the object is. Each of its methods is a real ``async def`` that sends
the call and returns the result checked and built from the interface's
result annotation: ``await calc.add(1, 2)`` is an ``int``, and a
``calc.add("x", 2)`` or a ``calc.nosuch()`` are errors to the checker.

:func:`start` gives the call handle instead, with the call options::

    call = asyncrpc.start(calc.add, timeout=2.0)(1, 2)     # AsyncCall[int], on its way
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar, cast

from asyncrpc.errors import InvalidResult
from asyncrpc.handle import AsyncCall
from asyncrpc.interface import Interface, MethodSpec, interface_specs
from asyncrpc.notify.base import Notifier
from asyncrpc.typed_values import ValueMismatch

if TYPE_CHECKING:
    from asyncrpc.client import Client

__all__ = ["make_stub", "start"]

InterfaceT = TypeVar("InterfaceT", bound=Interface)
P = ParamSpec("P")
R = TypeVar("R")

_SPEC_ATTR: Final = "__asyncrpc_method__"
_CLIENT_ATTR: Final = "_asyncrpc_client"
_STUB_CLASSES: dict[type[Interface], type[Any]] = {}


def _params(spec: MethodSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The remote arguments for a Python call of ``spec``: positional, in msgpack values."""
    if kwargs or len(args) < spec.required:
        bound = spec.signature.bind(None, *args, **kwargs)  # raises TypeError as Python would
        given = set(bound.arguments)
        bound.apply_defaults()
        arguments = bound.arguments
        values = [arguments[parameter.name] for parameter in spec.parameters]
        cut = _servers_defaults(spec, given)
        if cut is not None:
            del values[cut:]
        if spec.variadic is not None:
            values.extend(arguments.get(spec.variadic.name, ()))
    else:
        if len(args) > len(spec.parameters) and spec.variadic is None:
            spec.signature.bind(None, *args)  # raises the TypeError Python would
        values = list(args)
    parameters = spec.parameters
    for index, value in enumerate(values):
        parameter = parameters[index] if index < len(parameters) else spec.variadic
        if parameter is not None and parameter.to_wire is not None:
            values[index] = parameter.to_wire(value)
    return values


def _servers_defaults(spec: MethodSpec, given: set[str]) -> int | None:
    """Where the arguments end when a parameter left out has the default ``...``: stubgen's for a
    default the server's description could not carry, which only the server can fill in.

    Arguments are positional, so that one and every one after it are left out; ``None`` when
    no such parameter is left out.

    Raises:
        TypeError: an argument after that parameter is given.
    """
    parameters = spec.parameters
    for index, parameter in enumerate(parameters):
        if parameter.default is Ellipsis and parameter.name not in given:
            later = [p.name for p in parameters[index + 1 :] if p.name in given]
            if spec.variadic is not None and spec.variadic.name in given:
                later.append(f"*{spec.variadic.name}")
            if later:
                raise TypeError(
                    f"{spec.name}() needs argument {parameter.name!r} when {later[0]!r} is given: "
                    "its default is the server's, and remote arguments are positional"
                )
            return index
    return None


def _result_check(spec: MethodSpec) -> Callable[[Any], Any]:
    from_wire = spec.result_from_wire

    def check(value: Any) -> Any:
        try:
            return from_wire(value)
        except ValueMismatch as exc:
            raise InvalidResult(
                f"the result of {spec.wire_name!r} does not fit its annotation: {exc}", value
            ) from None

    return check


def _method(spec: MethodSpec) -> Callable[..., Coroutine[Any, Any, Any]]:
    check = _result_check(spec)
    wire_name = spec.wire_name

    async def method(self: Interface, *args: Any, **kwargs: Any) -> Any:
        client: Client = getattr(self, _CLIENT_ATTR)
        params = _params(spec, args, kwargs)
        return await client.connection.outgoing.call(wire_name, params, convert=check)

    method.__name__ = spec.name
    method.__qualname__ = spec.name
    method.__doc__ = spec.doc
    setattr(method, "__signature__", spec.signature)  # noqa: B010 - what inspect.signature() reads
    setattr(method, _SPEC_ATTR, (spec, check))
    return method


def _stub_class(interface: type[Interface]) -> type[Any]:
    made = _STUB_CLASSES.get(interface)
    if made is None:
        specs = interface_specs(interface)
        if not specs:
            raise TypeError(f"{interface!r} is not an asyncrpc.Interface")
        namespace: dict[str, Any] = {"__slots__": (), "__doc__": f"A client of {interface.__qualname__}."}
        for spec in reversed(specs):  # the nearest declaration wins
            for name, method in spec.methods.items():
                namespace[name] = _method(method)
        namespace["__repr__"] = lambda self: (
            f"<{interface.__qualname__} stub on {getattr(self, _CLIENT_ATTR)!r}>"
        )
        made = type(f"{interface.__name__}Stub", (interface,), namespace)
        _STUB_CLASSES[interface] = made
    return made


def make_stub(client: Client, interface: Callable[..., InterfaceT]) -> InterfaceT:
    """An instance of ``interface`` whose methods call ``client``'s peer.

    Raises:
        TypeError: ``interface`` is not a subclass of :class:`~asyncrpc.Interface`.
    """
    if not (isinstance(interface, type) and issubclass(interface, Interface)):
        raise TypeError(f"client.stub() takes a namespace or an asyncrpc.Interface, not {interface!r}")
    cls = _stub_class(interface)
    stub = object.__new__(cls)
    object.__setattr__(stub, _CLIENT_ATTR, client)
    return cast("InterfaceT", stub)  # an instance of a subclass of interface


def start(
    method: Callable[P, Coroutine[Any, Any, R]],
    *,
    notify: Notifier | None = None,
    timeout: float | None = None,
    handle: AsyncCall[R] | None = None,
) -> Callable[P, AsyncCall[R]]:
    """The call handle of a typed stub's method, with call options: ``start(calc.add, timeout=2)(1, 2)``.

    Calling what it returns starts the call at once and gives its
    :class:`~asyncrpc.AsyncCall`, whose result is checked and built as
    ``await calc.add(1, 2)`` would be.

    Args:
        method: a method of a stub from ``client.stub(SomeInterface)``.
        notify: how completion is announced (:mod:`asyncrpc.notify`).
        timeout: the call's deadline, in seconds.
        handle: a handle made ahead of time, new or reset.

    Raises:
        TypeError: ``method`` is not a method of a typed stub.
    """
    stub = getattr(method, "__self__", None)
    function = getattr(method, "__func__", None)
    attached = getattr(function, _SPEC_ATTR, None)
    if stub is None or attached is None:
        raise TypeError(
            f"start() takes a method of a typed stub (client.stub(Interface).method), not {method!r}"
        )
    spec, check = attached
    client: Client = getattr(stub, _CLIENT_ATTR)
    calls = client.connection.outgoing

    @functools.wraps(method)
    def begin(*args: P.args, **kwargs: P.kwargs) -> AsyncCall[R]:
        params = _params(spec, args, kwargs)
        return calls.call(spec.wire_name, params, notify, timeout, handle, convert=check)

    return begin
