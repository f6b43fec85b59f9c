"""The client: ``connect()``, calls, notifications, stubs and callbacks.

Making a call does no waiting: ``client.call()`` encodes the request, queues
it for the next write and returns the pending :class:`~asyncrpc.AsyncCall`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any

from asyncrpc.connection import Connection
from asyncrpc.dispatch import Dispatcher
from asyncrpc.handle import AsyncCall
from asyncrpc.notify.base import Notifier
from asyncrpc.options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HELLO_TIMEOUT,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_PENDING,
    ConnectOptions,
)
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

__all__ = ["Client", "Connector", "Stub", "StubMethod", "connect", "open_client"]


class Client:
    """One end of a msgpack-rpc connection, seen from the code that calls.

    Made by :func:`connect` (or, on a server, ``current_call().peer``).
    """

    __slots__ = ("_connection", "_dispatcher")

    def __init__(self, connection: Connection, dispatcher: Dispatcher) -> None:
        self._connection = connection
        self._dispatcher = dispatcher

    @property
    def connection(self) -> Connection:
        """The underlying :class:`~asyncrpc.connection.Connection`."""
        return self._connection

    @property
    def features(self) -> frozenset[str]:
        """asyncrpc extensions the peer speaks (``cancel``, ``deadline``, ``errors``); empty
        for a plain msgpack-rpc peer such as Neovim."""
        return self._connection.features

    @property
    def is_open(self) -> bool:
        return self._connection.is_open

    def call(
        self,
        method: str,
        *args: Any,
        notify: Notifier | None = None,
        timeout: float | None = None,
        handle: AsyncCall[Any] | None = None,
    ) -> AsyncCall[Any]:
        """Start a call; the returned handle is already on its way.

        Args:
            method: the remote method name.
            *args: the remote arguments (msgpack-rpc carries them positionally).
            notify: how completion is announced (:mod:`asyncrpc.notify`).
            timeout: the call's deadline in seconds: it fails with
                :class:`~asyncrpc.DeadlineExceeded`, and a peer that speaks
                the extension cancels the handler too.
            handle: a handle made ahead of time (``AsyncCall(...)``); it must
                be new or :meth:`~asyncrpc.AsyncCall.reset`.

        Raises:
            HandleInUseError: ``handle`` is pending, or finished and not reset.
            ConnectionLost: the connection is closed.
            EncodeError: an argument cannot be encoded as MessagePack.
            TooManyPendingCalls: ``max_pending`` calls are already pending.
            TypeError: ``notify`` is not a notification mode.
            ValueError: ``timeout`` is not a positive number.

        Each is raised here, at the call site: nothing is sent and no
        notification will be delivered.
        """
        return self._connection.call(method, args, notify, timeout, handle)

    def notify(self, method: str, *args: Any) -> None:
        """Send a msgpack-rpc notification: no reply, no handle."""
        self._connection.notify(method, args)

    def stub(self, namespace: str | None = None) -> Stub:
        """Attribute access to remote methods: ``client.stub("demo").AsyncFunc(1.0)``.

        Without a namespace, names are flat (``client.stub().nvim_eval("1+1")``).
        """
        return Stub(self, namespace)

    def register(self, obj: object, namespace: str | None = None) -> list[str]:
        """Let the peer call ``obj``'s public methods on this connection."""
        return self._dispatcher.register(obj, namespace)

    def register_function(self, fn: Callable[..., Any], name: str | None = None) -> None:
        """Let the peer call ``fn`` as ``name`` (Neovim's ``rpcrequest``/``rpcnotify``)."""
        self._dispatcher.register_function(fn, name)

    async def close(self) -> None:
        """Close the connection; calls still pending fail with ``ConnectionLost``. Idempotent."""
        self._connection.close()
        await self._connection.wait_closed()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        peer = self._connection.get_extra_info("peername")
        state = "open" if self.is_open else "closed"
        return f"<asyncrpc.Client {peer!r} {state}>"


class StubMethod:
    """A remote method bound to a client; calling it starts a call."""

    __slots__ = ("_client", "_options", "name")

    def __init__(self, client: Client, name: str, options: dict[str, Any] | None = None) -> None:
        self._client = client
        self.name = name
        self._options = options or {}

    def __call__(self, *args: Any) -> AsyncCall[Any]:
        return self._client.call(self.name, *args, **self._options)

    def options(
        self,
        *,
        notify: Notifier | None = None,
        timeout: float | None = None,
        handle: AsyncCall[Any] | None = None,
    ) -> StubMethod:
        """The same method with call options: ``stub.f.options(timeout=1.0)(x)``."""
        return StubMethod(self._client, self.name, {"notify": notify, "timeout": timeout, "handle": handle})

    def __repr__(self) -> str:
        return f"<StubMethod {self.name!r}>"


class Stub:
    """Remote methods as attributes; names starting with ``_`` are not remote."""

    __slots__ = ("_client", "_namespace")

    def __init__(self, client: Client, namespace: str | None) -> None:
        self._client = client
        self._namespace = namespace

    def __getattr__(self, name: str) -> StubMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        full = f"{self._namespace}.{name}" if self._namespace else name
        return StubMethod(self._client, full)

    def __repr__(self) -> str:
        return f"<Stub {self._namespace or '(flat)'}>"


class Connector:
    """What :func:`connect` returns: ``await`` it for a :class:`Client`, or use
    it with ``async with`` to have the client closed at the end."""

    __slots__ = ("_client", "_options")

    def __init__(self, options: ConnectOptions) -> None:
        self._options = options
        self._client: Client | None = None

    @property
    def options(self) -> ConnectOptions:
        """The validated options this connector connects with."""
        return self._options

    def __await__(self) -> Generator[Any, None, Client]:
        return open_client(self._options).__await__()

    async def __aenter__(self) -> Client:
        self._client = await open_client(self._options)
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()


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
) -> Connector:
    """Connect to a msgpack-rpc peer over TCP (``host``, ``port``) or a Unix socket (``path``).

    ``await connect(...)`` gives a :class:`Client`; ``async with connect(...)
    as client`` also closes it. The options are those of
    :class:`~asyncrpc.ConnectOptions`, checked here, before any I/O.

    Raises:
        ValueError: a missing or contradictory address, or an option out of range
            (at once, not when awaited).
        TimeoutError: (when awaited) no connection within ``connect_timeout``.
        OSError: (when awaited) the connection was refused or failed.
    """
    return Connector(
        ConnectOptions(
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
        )
    )


async def open_client(options: ConnectOptions) -> Client:
    """Open a connection with ``options`` and return its client (what awaiting :func:`connect` does)."""
    if options.connect_timeout is None:
        return await _open(options)
    try:
        async with asyncio.timeout(options.connect_timeout):
            return await _open(options)
    except TimeoutError:
        raise TimeoutError(
            f"could not connect to {options.address} within {options.connect_timeout:g}s"
        ) from None


async def _open(options: ConnectOptions) -> Client:
    loop = asyncio.get_running_loop()
    dispatcher = Dispatcher()

    def factory() -> Connection:
        return Connection(
            dispatcher,
            limits=options.limits,
            max_pending=options.max_pending,
            max_inflight=options.max_inflight,
            extensions=options.extensions,
        )

    host, port, path = options.host, options.port, options.path
    if path is not None:
        _, connection = await loop.create_unix_connection(factory, path)
    else:
        assert host is not None and port is not None  # ConnectOptions checked it
        _, connection = await loop.create_connection(factory, host, port)
    client = Client(connection, dispatcher)
    if options.extensions:
        try:
            await connection.negotiate(options.hello_timeout)
        except BaseException:
            connection.abort()
            raise
    return client
