"""A blocking client for code without an event loop.

The event loop runs in a background thread through anyio's blocking portal;
every method here blocks the calling thread until the loop has done the work::

    with asyncrpc.sync.connect("127.0.0.1", port) as c:
        print(c.call("add", 1, 2))                    # 3
        h = c.start("demo.AsyncFunc", 1.0, notify=notify.Apc(on_done))
        asyncrpc.sync.sleep_ex(5, alertable=True)     # on_done runs here, in this thread

Every notification mode works from plain threads: ``Apc`` (this thread's
alertable wait, :func:`sleep_ex`), ``Event`` with a ``threading.Event``,
``Polling`` (``h.status()``), ``Callback`` (on the client's loop thread, or on
a loop of your own), ``CompletionPort`` (:meth:`SyncClient.completion_port`,
then ``port.get_blocking()``) and ``MessagePump``
(:meth:`SyncClient.message_pump`, then ``pump.run_blocking()``, which runs
the procedures in the calling thread).
"""

from __future__ import annotations

import contextlib
import ssl as ssl_module
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from asyncrpc.client import Client
from asyncrpc.connector import open_client
from asyncrpc.errors import CallPending
from asyncrpc.handle import AsyncCall
from asyncrpc.notify.apc import pending_apcs, queue_apc, sleep_ex
from asyncrpc.notify.base import Notifier
from asyncrpc.notify.completion_port import CompletionPort
from asyncrpc.notify.message_pump import MessagePump
from asyncrpc.options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HELLO_TIMEOUT,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_PENDING,
    ConnectOptions,
)
from asyncrpc.reconnect import Reconnect
from asyncrpc.remote_errors import PlainErrors
from asyncrpc.runner import has_uvloop
from asyncrpc.status import AsyncEvent, CallStatus
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from asyncrpc.interface import Interface

InterfaceT = TypeVar("InterfaceT", bound="Interface")
P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["SyncCall", "SyncClient", "connect", "pending_apcs", "queue_apc", "sleep_ex"]


class SyncCall:
    """A call handle for threads: the members of :class:`~asyncrpc.AsyncCall`, with blocking waits.

    Returned by :meth:`SyncClient.start`. The outcome lives on the handle, so
    a wait that is interrupted (a timeout, Ctrl-C) loses nothing: a later
    :meth:`wait`, :meth:`result` or :meth:`complete` still gets it.

    Attributes:
        call: the :class:`~asyncrpc.AsyncCall` underneath (use its awaitable
            side only on the client's loop).
    """

    __slots__ = ("_done", "_portal", "call")

    def __init__(self, call: AsyncCall[Any], portal: BlockingPortal) -> None:
        self.call = call
        self._portal = portal
        self._done = threading.Event()

    def _mark_done(self, _call: AsyncCall[Any]) -> None:
        self._done.set()

    @property
    def user_info(self) -> Any:
        """The caller's own value, kept on the handle (``UserInfo``)."""
        return self.call.user_info

    @user_info.setter
    def user_info(self, value: Any) -> None:
        self.call.user_info = value

    @property
    def last_event(self) -> AsyncEvent | None:
        """The event of the last notification: ``None`` until the call finishes, then
        ``AsyncEvent.CALL_COMPLETE``."""
        return self.call.last_event

    @property
    def msgid(self) -> int | None:
        """The msgpack-rpc message id of the current call, or ``None`` before it starts."""
        return self.call.msgid

    @property
    def notify(self) -> Notifier | None:
        """The notification mode the call delivers to (``None``: none)."""
        return self.call.notify

    @property
    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called while the call was pending."""
        return self.call.cancel_requested

    @property
    def method(self) -> str | None:
        """The remote method name, or ``None`` before the handle is used."""
        return self.call.method

    def status(self) -> CallStatus:
        """The call's :class:`~asyncrpc.CallStatus` (``RpcAsyncGetCallStatus``); never blocks or raises."""
        return self.call.status()

    def done(self) -> bool:
        """True once the call finished, whatever the outcome; never blocks."""
        return self.call.done()

    def complete(self) -> Any:
        """The result now (``RpcAsyncCompleteCall``); never blocks.

        Raises:
            CallPending: the call has not finished; nothing changes.
            RPCError: the call's own error.
        """
        return self.call.complete()

    def exception(self) -> BaseException | None:
        """The call's error, ``None`` if it succeeded; raises ``CallPending`` while pending."""
        return self.call.exception()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the call finishes or ``timeout`` passes; True if it finished."""
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> Any:
        """Block until the call finishes, then return its result or raise its error.

        Raises:
            CallPending: still pending after ``timeout`` seconds (the call goes on).
            RPCError: the call's own error.
        """
        if not self._done.wait(timeout):
            raise CallPending(f"call {self.call.method!r} still pending after {timeout}s")
        return self.call.complete()

    def cancel(self, abort: bool = True, *, timeout: float | None = None) -> bool:
        """Cancel the call (see :meth:`asyncrpc.AsyncCall.cancel`); returns once the loop did it."""
        return bool(self._portal.call(lambda: self.call.cancel(abort, timeout=timeout)))

    def add_done_callback(self, fn: Callable[[AsyncCall[Any]], object]) -> None:
        """``fn(call)`` runs on the client's loop thread when the call finishes."""
        self._portal.call(self.call.add_done_callback, fn)

    def reset(self) -> None:
        """Make a finished handle reusable: pass it back as ``c.start(..., handle=h)``.

        Raises:
            HandleInUseError: the call is still pending.
        """
        self.call.reset()
        self._done.clear()

    def __repr__(self) -> str:
        return f"<SyncCall {self.call!r}>"


class SyncClient:
    """The blocking face of a :class:`~asyncrpc.Client`; see :func:`connect`.

    Its methods may be called from any thread but the client's loop thread.
    """

    __slots__ = ("_client", "_portal")

    def __init__(self, client: Client, portal: BlockingPortal) -> None:
        self._client = client
        self._portal = portal

    @property
    def portal(self) -> BlockingPortal:
        """The anyio portal into the client's loop thread."""
        return self._portal

    @property
    def client(self) -> Client:
        """The asynchronous client (use it only from the portal's loop)."""
        return self._client

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Make a call and block until its result (or error).

        Raises:
            RPCError: anything :meth:`asyncrpc.Client.call` raises at the call
                site, or the call's own error.
        """

        async def run() -> Any:
            return await self._client.call(method, *args, timeout=timeout)

        return self._portal.call(run)

    def start(
        self,
        method: str,
        *args: Any,
        notify: Notifier | None = None,
        timeout: float | None = None,
        handle: AsyncCall[Any] | SyncCall | None = None,
    ) -> SyncCall:
        """Start a call and return its handle at once; errors in making it raise here."""
        inner = handle.call if isinstance(handle, SyncCall) else handle

        def begin() -> SyncCall:
            call = self._client.call(method, *args, notify=notify, timeout=timeout, handle=inner)
            wrapper = handle if isinstance(handle, SyncCall) else SyncCall(call, self._portal)
            wrapper._done.clear()
            call.add_done_callback(wrapper._mark_done)
            return wrapper

        return self._portal.call(begin)

    def stub(self, interface: Callable[..., InterfaceT]) -> InterfaceT:
        """A typed client of ``interface`` (:class:`~asyncrpc.Interface`), for :meth:`run`.

        Its methods are coroutines of the background loop: hand them to
        :meth:`run` (``c.run(calc.add, 1, 2)``), which blocks for the result
        and is typed as the interface says.
        """
        from asyncrpc.typed_stub import make_stub

        return make_stub(self._client, interface)

    def run(self, method: Callable[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a typed stub's method and block until its result: ``c.run(calc.add, 1, 2)`` is an ``int``.

        Raises:
            RPCError: what awaiting the method raises (``InvalidArguments``,
                ``InvalidResult``, ``ConnectionLost``...).
        """

        async def run() -> R:
            return await method(*args, **kwargs)

        return self._portal.call(run)

    def describe(self, *, timeout: float | None = None) -> dict[str, Any]:
        """:meth:`asyncrpc.Client.describe`, blocking."""

        async def run() -> dict[str, Any]:
            return await self._client.describe(timeout=timeout)

        return self._portal.call(run)

    def notify(self, method: str, *args: Any) -> None:
        """Send a notification."""
        self._portal.call(lambda: self._client.notify(method, *args))

    def register_function(self, fn: Callable[..., Any], name: str | None = None) -> None:
        """Let the peer call ``fn`` back; it runs on the client's loop thread."""
        self._client.register_function(fn, name)

    def completion_port(self) -> CompletionPort:
        """A :class:`~asyncrpc.notify.CompletionPort` on this client's loop, for ``get_blocking()``."""
        return CompletionPort(loop=self._client.connection.loop)

    def message_pump(self) -> MessagePump:
        """A :class:`~asyncrpc.notify.MessagePump` on this client's loop, for ``run_blocking()``."""
        return MessagePump(loop=self._client.connection.loop)

    def close(self) -> None:
        """Close the connection, as :meth:`asyncrpc.Client.close` does; blocks until it is closed.

        The ``with`` block of :func:`connect` closes it too (and stops the loop thread).
        """
        self._portal.call(self._client.close)


@contextlib.contextmanager
def connect(
    host: str | None = None,
    port: int | None = None,
    *,
    path: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_inflight: int = DEFAULT_MAX_INFLIGHT,
    extensions: bool = True,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    hello_timeout: float = DEFAULT_HELLO_TIMEOUT,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    plain_errors: PlainErrors = "neovim",
    raw_strings: bool = False,
    keepalive: float | None = None,
    reconnect: Reconnect | None = None,
    ssl: bool | ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    token: str | None = None,
    use_uvloop: bool = True,
) -> Iterator[SyncClient]:
    """Connect from plain threaded code: ``with asyncrpc.sync.connect(host, port) as c:``.

    Takes the options of :func:`asyncrpc.connect` (checked the same way, by
    :class:`~asyncrpc.ConnectOptions`), plus ``use_uvloop`` for the
    background loop (uvloop is used when installed and this is true).

    On the way out the connection is closed (within its ``close_timeout``)
    and the loop thread stopped.

    Raises:
        ValueError: a missing or contradictory address, or an option out of range.
        TimeoutError: no connection within ``connect_timeout``.
        OSError: the connection was refused or failed (``ssl.SSLError`` for TLS).
        AuthenticationFailed: the server refused the token.
    """
    options = ConnectOptions(
        host=host,
        port=port,
        path=path,
        limits=limits,
        max_pending=max_pending,
        max_inflight=max_inflight,
        extensions=extensions,
        connect_timeout=connect_timeout,
        hello_timeout=hello_timeout,
        close_timeout=close_timeout,
        plain_errors=plain_errors,
        raw_strings=raw_strings,
        keepalive=keepalive,
        reconnect=reconnect,
        ssl=ssl,
        server_hostname=server_hostname,
        token=token,
    )
    backend_options = {"use_uvloop": use_uvloop and has_uvloop()}
    with start_blocking_portal(backend="asyncio", backend_options=backend_options) as portal:
        client = portal.call(open_client, options)
        try:
            yield SyncClient(client, portal)
        finally:
            portal.call(client.close)
