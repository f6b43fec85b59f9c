"""The client: calls, notifications, stubs and callbacks on one connection.

Making a call does no waiting: ``client.call()`` encodes the request, queues
it for the next write and returns the pending :class:`~asyncrpc.AsyncCall`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from asyncrpc.errors import ConnectionLost
from asyncrpc.handle import AsyncCall, OutgoingCalls, WaitingCalls
from asyncrpc.notify.base import Notifier
from asyncrpc.reconnect import ClientState, Reconnector

if TYPE_CHECKING:
    from asyncrpc.connection import Connection
    from asyncrpc.interface import Interface

InterfaceT = TypeVar("InterfaceT", bound="Interface")

__all__ = ["Client", "Stub", "StubMethod"]


class Client:
    """One end of a msgpack-rpc connection, seen from the code that calls.

    Made by :func:`~asyncrpc.connect` (or, on a server, ``current_call().peer``).
    Use it on the event loop it belongs to; from plain threads use
    :mod:`asyncrpc.sync`. ``async with`` closes it on the way out.
    """

    __slots__ = ("_calls", "_connection", "_reconnector")

    def __init__(self, connection: Connection, *, reconnector: Reconnector | None = None) -> None:
        self._connection = connection
        # Where calls go: the connection's table, or (reconnecting) the waiting one.
        self._calls: OutgoingCalls | WaitingCalls = connection.outgoing
        self._reconnector = reconnector
        if reconnector is not None:
            reconnector.attach(connection, self._switch)

    def _switch(self, connection: Connection, calls: OutgoingCalls | WaitingCalls) -> None:
        # The reconnector's hook: a new connection is up, or none is.
        self._connection = connection
        self._calls = calls

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
        """True while calls can be made (with ``reconnect=``, also while reconnecting:
        the calls then wait for the connection)."""
        if self._reconnector is not None:
            return self._reconnector.state is not ClientState.CLOSED
        return self._connection.accepting_calls

    @property
    def state(self) -> ClientState:
        """``CONNECTED``, ``CONNECTING`` (only with ``reconnect=``: the connection
        dropped and is being made again) or ``CLOSED``."""
        if self._reconnector is not None:
            return self._reconnector.state
        return ClientState.CONNECTED if self._connection.accepting_calls else ClientState.CLOSED

    async def wait_connected(self) -> None:
        """Return once the client is connected (at once if it is).

        Raises:
            ConnectionLost: the client closed, or gave up reconnecting, first.
        """
        if self._reconnector is not None:
            await self._reconnector.wait_connected()
        elif not self._connection.accepting_calls:
            raise ConnectionLost(f"cannot wait for the connection: {self._connection.closed_reason}")

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
                the extension cancels the handler too. Inside a handler
                whose own call has a deadline, the call gets at most what
                that one has left, whatever ``timeout`` says.
            handle: a handle made ahead of time (``AsyncCall(...)``); it must
                be new or :meth:`~asyncrpc.AsyncCall.reset`.

        Raises:
            HandleInUseError: ``handle`` is pending, or finished and not reset.
            ConnectionLost: the connection is closed.
            EncodeError: an argument cannot be encoded as MessagePack.
            MessageTooLarge: the request is larger than the peer accepts.
            TooManyPendingCalls: ``max_pending`` calls are already pending.
            TypeError: ``notify`` is not a notification mode.
            ValueError: ``timeout`` is not a positive number.
            RuntimeError: called from a thread or event loop other than the
                client's (use :mod:`asyncrpc.sync` from plain threads).

        Each is raised here, at the call site: nothing is sent and no
        notification will be delivered.
        """
        return self._calls.call(method, args, notify, timeout, handle)

    def notify(self, method: str, *args: Any) -> None:
        """Send a msgpack-rpc notification: no reply, no handle.

        Raises:
            ConnectionLost: the connection is closed.
            EncodeError: an argument cannot be encoded as MessagePack.
            MessageTooLarge: the notification is larger than the peer accepts.
            RuntimeError: called from a thread or event loop other than the client's.
        """
        self._calls.notify(method, args)

    @overload
    def stub(self, namespace: str | None = None) -> Stub: ...

    # An interface is abstract, and a type checker takes no abstract class for
    # a type[...] parameter: the interface is typed as what makes an instance of it.
    @overload
    def stub(self, namespace: Callable[..., InterfaceT]) -> InterfaceT: ...

    def stub(self, namespace: str | Callable[..., InterfaceT] | None = None) -> Stub | InterfaceT:
        """Remote methods as attributes: ``client.stub("demo").AsyncFunc(1.0)``.

        Without a namespace, names are flat (``client.stub().nvim_eval("1+1")``).
        Given a typed interface (:class:`~asyncrpc.Interface`), it returns a
        client of that interface that the type checker understands:
        ``await client.stub(Calc).add(1, 2)`` is an ``int``.
        """
        if namespace is None or isinstance(namespace, str):
            return Stub(self, namespace)
        from asyncrpc.typed_stub import make_stub

        return make_stub(self, namespace)

    async def describe(self, *, timeout: float | None = None) -> dict[str, Any]:
        """What the peer answers: its methods, their parameters, types and docs (``docs/reflection.md``).

        ``timeout`` is the call's deadline, as for :meth:`call`.

        Raises:
            MethodNotFound: the peer does not describe itself (a plain
                msgpack-rpc peer; Neovim has ``nvim_get_api_info`` instead).
            DescribeFailed: the peer could not describe one of its methods
                (the message says which, and why).
        """
        from asyncrpc.wire.extensions import DESCRIBE_METHOD

        answer: dict[str, Any] = await self.call(DESCRIBE_METHOD, timeout=timeout)
        return answer

    def register(self, obj: object, namespace: str | None = None) -> list[str]:
        """Let the peer call ``obj``'s public methods, on this connection only."""
        if self._reconnector is not None:  # kept for every connection to come
            return self._reconnector.dispatcher.register(obj, namespace)
        return self._connection.incoming.register(obj, namespace)

    def register_function(self, fn: Callable[..., Any], name: str | None = None) -> None:
        """Let the peer call ``fn`` as ``name`` (Neovim's ``rpcrequest``/``rpcnotify``), on this
        connection only."""
        if self._reconnector is not None:
            self._reconnector.dispatcher.register_function(fn, name)
            return
        self._connection.incoming.register_function(fn, name)

    async def close(self) -> None:
        """Close the connection and wait until the socket is gone. Idempotent.

        No new call can be made once it starts. What is queued is still sent,
        for up to the connection's ``close_timeout`` (5 seconds by default,
        see :class:`~asyncrpc.ConnectOptions`); what a peer that does not read
        has not taken by then is dropped and the socket aborted, so this
        returns within ``close_timeout`` whatever the peer does. Calls still
        pending then fail with :class:`~asyncrpc.ConnectionLost`, whose
        message says whether bytes were dropped. With ``reconnect=``, it also
        stops reconnecting, and calls waiting for a connection fail with
        ``ConnectionLost``.
        """
        if self._reconnector is not None:
            await self._reconnector.close()
            return
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
    """A remote method bound to a client; calling it starts a call.

    ``stub_method(*args)`` is ``client.call(name, *args, **options)`` and
    returns the same :class:`~asyncrpc.AsyncCall`.

    Attributes:
        name: the full remote method name (``"demo.AsyncFunc"``).
    """

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
