"""``asyncrpc call ADDRESS METHOD [JSON_ARG ...]``: one call, its result printed as JSON."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
from collections.abc import Sequence
from typing import Any, Final

from asyncrpc.cli.errors import CommandError, ExitStatus, reason, shorten
from asyncrpc.cli.security import ClientSecurity, is_loopback, warning
from asyncrpc.client import Client
from asyncrpc.connector import Connector, connect
from asyncrpc.errors import (
    AuthenticationFailed,
    ConnectionLost,
    DeadlineExceeded,
    EncodeError,
    MessageTooLarge,
    ProtocolError,
    RemoteError,
    RPCError,
)

__all__ = [
    "NO_SECURITY",
    "call",
    "make_connector",
    "open_or_explain",
    "parse_address",
    "parse_args",
    "to_json",
]

NO_SECURITY: Final = ClientSecurity()
"""Plain TCP or a Unix socket, without a token."""


def to_json(value: Any) -> Any:
    """msgpack values JSON cannot hold, in a readable form."""
    if isinstance(value, datetime.datetime):  # a msgpack timestamp
        return value.isoformat()
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A msgpack str whose bytes are not UTF-8 (Neovim sends a Latin-1
            # buffer's text so) is decoded with lone surrogates: show its
            # bytes, as for any bin that is not UTF-8, rather than fail to print.
            value = value.encode("utf-8", "surrogateescape")
        else:
            return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple) and hasattr(value, "code") and hasattr(value, "data"):  # msgpack.ExtType
        return {"ext": value.code, "data": base64.b64encode(value.data).decode("ascii")}
    if isinstance(value, dict):
        return {_json_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def _json_key(key: Any) -> str | int | float | bool | None:
    if key is None or isinstance(key, int | float | bool):
        return key  # json.dumps writes these as keys itself
    converted = to_json(key)  # a str that is not UTF-8 too: keys print as values do
    return converted if isinstance(converted, str) else json.dumps(converted, default=repr)


def parse_address(address: str) -> dict[str, Any]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or a socket path, as keyword arguments for ``connect()``."""
    if "/" in address or address.endswith(".sock"):
        return {"path": address}
    host, colon, port = address.rpartition(":")
    if not colon:
        raise CommandError(
            f"{address!r} has no port: give HOST:PORT (e.g. 127.0.0.1:6000), "
            "or the path of a Unix socket (./NAME for one in this directory)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise CommandError(f"write an IPv6 address in brackets, e.g. [::1]:6000, not {address!r}")
    if not (port.isascii() and port.isdigit()):
        raise CommandError(f"bad port {port!r} in {address!r}: give HOST:PORT with a port from 1 to 65535")
    return {"host": host or "127.0.0.1", "port": int(port)}


def make_connector(
    address: str,
    connect_timeout: float,
    *,
    raw_strings: bool = False,
    security: ClientSecurity = NO_SECURITY,
) -> Connector:
    """The validated connection options for ``address``; nothing is opened yet."""
    where = parse_address(address)
    if security.ssl and "path" in where and security.server_hostname is None:
        raise CommandError(
            f"TLS over the Unix socket {address} needs --server-hostname NAME "
            "(a name its certificate carries)"
        )
    if security.token is not None and not security.ssl and "host" in where and not is_loopback(where["host"]):
        warning(
            f"the token from ${security.token_env} goes to {address} unencrypted: anyone on the way "
            "can read it (add --tls, or --tls-ca FILE)"
        )
    try:
        # The hello is part of connecting: a peer that answers nothing within
        # connect_timeout is not one we can talk to. The probe starts after the
        # socket connects, so with the same timeout it never gives up first and
        # hands a silent peer our call to wait --timeout more for.
        return connect(
            **where,
            connect_timeout=connect_timeout,
            hello_timeout=connect_timeout,
            raw_strings=raw_strings,
            ssl=security.ssl,
            server_hostname=security.server_hostname,
            token=security.token,
        )
    except ValueError as exc:
        raise CommandError(f"bad address {address!r}: {exc}") from None


def parse_args(texts: Sequence[str], *, raw: bool) -> list[Any]:
    if raw:
        return list(texts)
    params: list[Any] = []
    for number, text in enumerate(texts, 1):
        try:
            params.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"argument {number} is not valid JSON: {exc.msg} at character {exc.pos} in "
                f"{shorten(text)!r} (write a string as '\"text\"', "
                "or use --raw to send arguments as plain strings)"
            ) from None
    return params


def _lost(address: str, exc: ConnectionLost, *, heard_from: bool, tls: bool) -> CommandError:
    """What a dropped connection tells the user: why it dropped, and whether the peer ever spoke."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):
        return CommandError(f"TLS with {address} failed: {_tls_reason(cause)}")
    if isinstance(cause, ProtocolError):
        return CommandError(
            f"{address} does not speak msgpack-rpc: what it sent is not a msgpack-rpc message ({cause})"
        )
    if not heard_from and tls:
        # Over TLS 1.3, a server refuses a client without a certificate only after the
        # handshake, by closing the connection.
        return CommandError(
            f"{address} closed the TLS connection without answering: does it require a client "
            "certificate? (--tls-cert FILE)"
        )
    if not heard_from:
        return CommandError(
            f"{address} closed the connection without answering: is it a msgpack-rpc server? "
            "(if it speaks TLS: --tls, or --tls-ca FILE)"
        )
    return CommandError(
        f"the connection to {address} was lost before the reply came ({exc})", ExitStatus.NO_REPLY
    )


async def open_or_explain(connector: Connector) -> Client:
    """The connected client, or a :class:`CommandError` saying why there is none."""
    address = connector.options.address
    try:
        return await connector
    # TimeoutError and (perhaps) ConnectionLost are OSErrors too: the specific ones first.
    except TimeoutError:
        tls = (
            "over TLS: does it require a client certificate? --tls-cert FILE; "
            if connector.options.ssl
            else ""
        )
        raise CommandError(
            f"no reply from {address} within {connector.options.connect_timeout:g}s: "
            f"is it a msgpack-rpc server? ({tls}--connect-timeout S waits longer)"
        ) from None
    except ConnectionLost as exc:
        raise _lost(address, exc, heard_from=False, tls=bool(connector.options.ssl)) from None
    except AuthenticationFailed as exc:
        hint = (
            " (give it with --token-env VAR)"
            if connector.options.token is None
            else " (is --token-env naming the right variable?)"
        )
        raise CommandError(f"{address} refused the connection: {exc.message}{hint}") from None
    except ssl.SSLCertVerificationError as exc:
        raise CommandError(
            f"TLS with {address} failed: its certificate is not accepted: {exc.verify_message or exc.reason} "
            "(--tls-ca FILE trusts the CA that signed it; --server-hostname NAME checks another name)"
        ) from None
    except ssl.SSLError as exc:
        raise CommandError(f"TLS with {address} failed: {_tls_reason(exc)}") from None
    except OSError as exc:
        raise CommandError(f"cannot connect to {address}: {reason(exc)} (is the server running?)") from None


def _tls_reason(exc: ssl.SSLError) -> str:
    text = exc.reason or str(exc)
    if text in {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}:
        return f"{text}: is it a TLS server?"
    if "CERTIFICATE_REQUIRED" in text or "HANDSHAKE_FAILURE" in text:
        return f"{text}: does it require a client certificate (--tls-cert FILE --tls-key FILE)?"
    if "UNKNOWN_CA" in text or "BAD_CERTIFICATE" in text:
        return f"{text}: the server does not accept the client certificate"
    return text


async def call(connector: Connector, method: str, params: list[Any], *, timeout: float, notify: bool) -> int:
    address = connector.options.address
    client = await open_or_explain(connector)
    async with client:
        try:
            if notify:
                client.notify(method, *params)
                return ExitStatus.OK
            call = client.call(method, *params, timeout=timeout)
        except ConnectionLost as exc:  # it hung up before the call could be sent
            heard_from = client.connection.bytes_received > 0
            raise _lost(address, exc, heard_from=heard_from, tls=bool(connector.options.ssl)) from None
        except EncodeError as exc:
            raise CommandError(f"the arguments cannot be sent as MessagePack: {exc}") from None
        except MessageTooLarge as exc:
            raise CommandError(f"the arguments are too large for {address}: {exc}") from None
        try:
            result = await call
        except RemoteError as exc:
            raise CommandError(str(exc), ExitStatus.REMOTE_ERROR) from None  # already "Type: message"
        except DeadlineExceeded:
            raise CommandError(
                f"no reply to {method!r} from {address} within {timeout:g}s (--timeout S waits longer)",
                ExitStatus.NO_REPLY,
            ) from None
        except ConnectionLost as exc:
            heard_from = client.connection.bytes_received > 0
            raise _lost(address, exc, heard_from=heard_from, tls=bool(connector.options.ssl)) from None
        except RPCError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}", ExitStatus.REMOTE_ERROR) from None
    try:
        print(json.dumps(to_json(result), ensure_ascii=False, default=repr))
    except OSError as exc:  # a full disk, a closed pipe
        raise CommandError(f"cannot write the result: {reason(exc)}") from None
    return ExitStatus.OK
