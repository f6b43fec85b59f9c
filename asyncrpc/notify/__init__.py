"""Notification modes: how a call tells its caller that it completed.

========================  ==============================  ==========================================
mode                      Windows RPC                     asyncio
========================  ==============================  ==========================================
``None`` (default)        ``RpcNotificationTypeNone``     ``await call``
:class:`Polling`          ``RpcAsyncGetCallStatus`` loop  ``call.status()`` until not ``PENDING``
:class:`Event`            event object                    sets an ``asyncio.Event`` / ``threading.Event``
:class:`Callback`         APC with ``hThread``            ``fn(call, event)`` via ``call_soon(_threadsafe)``
:class:`Apc`              APC to a plain thread           runs in ``asyncrpc.sync.sleep_ex(..., True)``
:class:`CompletionPort`   I/O completion port             ``asyncio.Queue`` of :class:`Completion`
:class:`MessagePump`      window message                  a pump task dispatching :class:`Message`
========================  ==============================  ==========================================

A call handle knows only :class:`Notifier`: it calls ``deliver(call, event)``
exactly once when the call finishes, whatever the outcome, and never for a
call that failed to start. No mode starts a task or a thread per call (a
:class:`Callback` whose routine is a coroutine function runs that routine as
a task, by request).
"""

from asyncrpc.notify.apc import Apc
from asyncrpc.notify.base import Notifier
from asyncrpc.notify.callback import Callback
from asyncrpc.notify.completion_port import Completion, CompletionPort, PortBinding
from asyncrpc.notify.event import Event
from asyncrpc.notify.message_pump import WM_APP, WM_QUIT, WM_USER, Message, MessagePump, MessageTarget
from asyncrpc.notify.polling import Polling

__all__ = [
    "WM_APP",
    "WM_QUIT",
    "WM_USER",
    "Apc",
    "Callback",
    "Completion",
    "CompletionPort",
    "Event",
    "Message",
    "MessagePump",
    "MessageTarget",
    "Notifier",
    "Polling",
    "PortBinding",
]
