"""Method names to handlers, and how each handler runs.

A handler runs one of three ways, decided once when it is registered:

``INLINE``    a plain ``def``: called right where the request is decoded, no task.
``TASK``      an ``async def``: a task of its own, so a slow call never delays a fast one.
``THREAD``    marked :func:`blocking`: a worker thread (anyio), so it never blocks the loop.

Registering takes public names only: an attribute whose name starts with ``_``
is never reachable from the wire.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any, Final, TypeVar

__all__ = ["Dispatcher", "Handler", "HandlerKind", "blocking", "cooperative"]

F = TypeVar("F", bound=Callable[..., Any])

_BLOCKING_ATTR: Final = "__asyncrpc_blocking__"
_COOPERATIVE_ATTR: Final = "__asyncrpc_cooperative__"


def blocking(fn: F) -> F:
    """Mark a plain ``def`` handler to run in a worker thread.

    A cancel request does not interrupt the thread (nothing can); the handler
    sees it through ``asyncrpc.current_call().test_cancel()``.
    """
    setattr(fn, _BLOCKING_ATTR, True)
    return fn


def cooperative(fn: F) -> F:
    """Mark an ``async def`` handler that polls ``test_cancel()`` instead of being cancelled.

    A cancel request (or the deadline) then only sets the flag; the handler
    decides when and how to finish (``RpcServerTestCancel``).
    """
    setattr(fn, _COOPERATIVE_ATTR, True)
    return fn


class HandlerKind(enum.Enum):
    INLINE = "inline"
    TASK = "task"
    THREAD = "thread"


class Handler:
    """A registered callable and the way it runs."""

    __slots__ = ("cooperative", "fn", "kind", "name")

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"handler {name!r} is not callable: {fn!r}")
        self.name = name
        self.fn = fn
        if getattr(fn, _BLOCKING_ATTR, False):
            if inspect.iscoroutinefunction(fn):
                raise TypeError(f"@blocking is for plain def handlers; {name!r} is async")
            self.kind = HandlerKind.THREAD
        elif inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - objects with an async __call__
        ):
            self.kind = HandlerKind.TASK
        else:
            self.kind = HandlerKind.INLINE
        # Threads cannot be interrupted, so blocking handlers always cooperate.
        self.cooperative = self.kind is HandlerKind.THREAD or bool(getattr(fn, _COOPERATIVE_ATTR, False))

    def __repr__(self) -> str:
        return f"<Handler {self.name!r} {self.kind.value}>"


class Dispatcher:
    """The methods one end of a connection answers.

    Args:
        parent: handlers to fall back on (a server's, shared by all its
            connections): a name registered here hides the parent's, and
            nothing registered here is visible to the parent.
    """

    __slots__ = ("_handlers", "_parent")

    def __init__(self, parent: Dispatcher | None = None) -> None:
        self._handlers: dict[str, Handler] = {}
        self._parent = parent

    def register_function(self, fn: Callable[..., Any], name: str | None = None) -> None:
        """Answer ``name`` (default: the function's ``__name__``) with ``fn``."""
        if name is None:
            name = getattr(fn, "__name__", None)
            if not isinstance(name, str):
                raise TypeError("name= is required for a callable without __name__")
        if not name:
            raise ValueError("a method name cannot be empty")
        self._handlers[name] = Handler(name, fn)

    def register(self, obj: object, namespace: str | None = None) -> list[str]:
        """Answer every public method of ``obj`` as ``namespace.method`` (or flat).

        Returns the method names registered. Properties are never called to
        find methods, and no name starting with ``_`` is registered.

        An implementation of a typed interface (:class:`~asyncrpc.Interface`)
        registers the interface's methods only, under its namespace unless
        ``namespace`` is given, each with its arguments checked.
        """
        from asyncrpc.interface import Interface, checked_handlers

        if isinstance(obj, Interface):
            handlers = checked_handlers(obj, namespace)
            for name, fn in handlers.items():
                self._handlers[name] = Handler(name, fn)
            return list(handlers)
        registered: list[str] = []
        module_name = obj.__name__ if inspect.ismodule(obj) else None
        for attr in dir(obj):
            if attr.startswith("_"):
                continue
            if isinstance(inspect.getattr_static(obj, attr, None), property):
                continue  # never run a property's code just to look for methods
            fn = getattr(obj, attr)
            if not callable(fn) or inspect.isclass(fn):
                continue
            if module_name is not None and getattr(fn, "__module__", None) != module_name:
                continue  # a module's imports are not its API
            name = f"{namespace}.{attr}" if namespace else attr
            self._handlers[name] = Handler(name, fn)
            registered.append(name)
        if not registered:
            raise ValueError(f"{obj!r} has no public methods to register")
        return registered

    def unregister(self, name: str) -> None:
        """Stop answering ``name``; unknown names are ignored."""
        self._handlers.pop(name, None)

    def get(self, name: str) -> Handler | None:
        """The handler for ``name`` (here, else the parent's), or ``None``."""
        handler = self._handlers.get(name)
        if handler is None and self._parent is not None:
            return self._parent.get(name)
        return handler

    def handlers(self) -> dict[str, Handler]:
        """Every handler answered (the parent's too, unless hidden by one here), by name."""
        merged = self._parent.handlers() if self._parent is not None else {}
        merged.update(self._handlers)
        return merged

    def names(self) -> list[str]:
        """Every method name answered (the parent's too), sorted."""
        names = set(self._handlers)
        if self._parent is not None:
            names.update(self._parent.names())
        return sorted(names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None
