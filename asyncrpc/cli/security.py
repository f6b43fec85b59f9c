"""TLS and token options of the ``asyncrpc`` command: their files read and checked before any I/O.

Every mistake (a missing or unreadable file, a file that is not what its
option says, a malformed token file, an environment variable that is not
set) is a :class:`CommandError` naming the option and the file, never the
token: a token is never printed, whatever is wrong.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
import stat
import sys
from dataclasses import dataclass, field
from typing import Final

from asyncrpc import tls
from asyncrpc.cli.errors import CommandError, reason

__all__ = [
    "ClientSecurity",
    "ServerSecurity",
    "client_security",
    "is_loopback",
    "read_token_env",
    "read_token_file",
    "server_security",
    "warning",
]

_CERTIFICATE: Final = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY: Final = b"PRIVATE KEY-----"  # PKCS#8, RSA, EC: "-----BEGIN ... PRIVATE KEY-----"
_ENCRYPTED: Final = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")
_OPEN_TO_OTHERS: Final = stat.S_IRWXG | stat.S_IRWXO


def warning(message: str) -> None:
    """One ``warning: ...`` line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _read(option: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise CommandError(f"cannot read {option} {path}: {reason(exc)}") from None


def _check_certificate(option: str, path: str) -> bytes:
    data = _read(option, path)
    if _CERTIFICATE not in data:
        raise CommandError(f"{option} {path} holds no certificate (PEM, '-----BEGIN CERTIFICATE-----')")
    return data


def _check_key(option: str, path: str, data: bytes, *, needs: str) -> None:
    if any(marker in data for marker in _ENCRYPTED):
        raise CommandError(
            f"the private key in {option} {path} is encrypted: give it unencrypted "
            "(openssl pkey -in KEY -out PLAIN), in a file only this user can read"
        )
    if _PRIVATE_KEY not in data:
        raise CommandError(f"{option} {path} holds no private key (PEM): {needs}")


def _load_error(exc: ssl.SSLError, cert: tuple[str, str], key: tuple[str, str] | None) -> CommandError:
    """An ``ssl`` error from loading a certificate and its key, past the checks above."""
    if exc.reason == "KEY_VALUES_MISMATCH":
        where = f"{key[0]} {key[1]}" if key else f"{cert[0]} {cert[1]}"
        return CommandError(f"the private key in {where} does not belong to the certificate in {cert[1]}")
    files = f"{cert[0]} {cert[1]}" + (f" and {key[0]} {key[1]}" if key else "")
    return CommandError(f"cannot load {files}: {exc.reason or exc}")


def _load_ca(option: str, path: str) -> None:
    _check_certificate(option, path)
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise CommandError(f"cannot load {option} {path}: {exc.reason or exc}") from None


def _check_pair(cert_option: str, cert: str, key_option: str, key: str | None) -> None:
    """The certificate and key files hold what they should (before OpenSSL says it less clearly)."""
    cert_data = _check_certificate(cert_option, cert)
    if key is None:
        _check_key(cert_option, cert, cert_data, needs=f"give the key with {key_option} FILE")
    else:
        _check_key(key_option, key, _read(key_option, key), needs="give the certificate's private key")


# -- the server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSecurity:
    """What ``serve`` listens with: a TLS context, and the tokens (token to principal), if any."""

    ssl: ssl.SSLContext | None = None
    tokens: dict[str, str] | None = field(default=None, repr=False)
    client_ca: bool = False


def read_token_file(path: str) -> dict[str, str]:
    """``--token-file``: one ``PRINCIPAL TOKEN`` pair a line, as a mapping of token to principal.

    Blank lines and lines starting with ``#`` are skipped. Warns (one line) when
    the file is open to group or others, as ssh does for a private key.
    """
    option = "--token-file"
    data = _read(option, path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # gone since it was read: nothing to warn about
        mode = 0
    if mode & _OPEN_TO_OTHERS:
        can = "read" if mode & (stat.S_IRGRP | stat.S_IROTH) else "change"
        warning(
            f"{option} {path} has mode {mode:04o}: others on this machine can {can} its tokens "
            f"(chmod 600 {path})"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"{option} {path} is not UTF-8 text") from None
    tokens: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            # Never the line itself: it may hold a token.
            raise CommandError(
                f"{option} {path}, line {number}: expected PRINCIPAL TOKEN (two words), "
                f"found {len(words)} word{'s' if len(words) != 1 else ''}"
            )
        principal, token = words
        if token in tokens:
            raise CommandError(
                f"{option} {path}, line {number}: the same token as line {lines[token]} "
                "(each token names one principal)"
            )
        tokens[token] = principal
        lines[token] = number
    if not tokens:
        raise CommandError(f"{option} {path} holds no tokens (one PRINCIPAL TOKEN pair a line)")
    return tokens


def server_security(args: argparse.Namespace) -> ServerSecurity:
    """``--tls-cert``, ``--tls-key``, ``--tls-client-ca`` and ``--token-file``, read and checked."""
    cert: str | None = args.tls_cert
    key: str | None = args.tls_key
    client_ca: str | None = args.tls_client_ca
    if cert is None:
        for given, name in ((key, "--tls-key"), (client_ca, "--tls-client-ca")):
            if given is not None:
                raise CommandError(f"{name} needs --tls-cert FILE (the server's certificate)")
    tokens = None
    if args.token_file is not None:
        if args.raw_strings:
            raise CommandError(
                "--token-file needs clients that send asyncrpc's hello (where the token travels): "
                "not with --raw-strings"
            )
        tokens = read_token_file(args.token_file)
    context = None
    if cert is not None:
        _check_pair("--tls-cert", cert, "--tls-key", key)
        if client_ca is not None:
            _load_ca("--tls-client-ca", client_ca)
        try:
            context = tls.server_context(cert, key, client_ca=client_ca)
        except ssl.SSLError as exc:
            raise _load_error(exc, ("--tls-cert", cert), ("--tls-key", key) if key else None) from None
        except OSError as exc:  # changed since it was checked
            raise CommandError(f"cannot load --tls-cert {cert}: {reason(exc)}") from None
    return ServerSecurity(context, tokens, client_ca is not None)


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: reachable from this machine only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: it may resolve to anything
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


# -- the clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSecurity:
    """What a client command connects with: ``connect(ssl=, server_hostname=, token=)``."""

    ssl: ssl.SSLContext | bool | None = None
    server_hostname: str | None = None
    token: str | None = field(default=None, repr=False)
    token_env: str | None = None


def read_token_env(name: str) -> str:
    """``--token-env VAR``: the token in the environment variable ``name``."""
    value = os.environ.get(name)
    if value is None:
        raise CommandError(f"--token-env {name}: the environment variable {name} is not set")
    if not value.strip():
        raise CommandError(f"--token-env {name}: the environment variable {name} is empty")
    return value


def client_security(args: argparse.Namespace) -> ClientSecurity:
    """``--tls``, ``--tls-ca``, ``--tls-cert``, ``--tls-key``, ``--server-hostname`` and
    ``--token-env``, read and checked."""
    ca: str | None = args.tls_ca
    cert: str | None = args.tls_cert
    key: str | None = args.tls_key
    hostname: str | None = args.server_hostname
    if key is not None and cert is None:
        raise CommandError("--tls-key needs --tls-cert FILE (the certificate that goes with the key)")
    uses_tls = bool(args.tls) or ca is not None or cert is not None
    if hostname is not None and not uses_tls:
        raise CommandError("--server-hostname is for TLS: add --tls, or --tls-ca FILE")
    token = None
    if args.token_env is not None:
        if getattr(args, "raw_strings", False):
            raise CommandError(
                "--token-env: the token travels in asyncrpc's hello, which --raw-strings does not send"
            )
        token = read_token_env(args.token_env)
    context: ssl.SSLContext | bool | None = None
    if uses_tls:
        if ca is not None:
            _load_ca("--tls-ca", ca)
        if cert is not None:
            _check_pair("--tls-cert", cert, "--tls-key", key)
        try:
            context = tls.client_context(ca=ca, cert=cert, key=key)
        except ssl.SSLError as exc:
            raise _load_error(exc, ("--tls-cert", cert or ""), ("--tls-key", key) if key else None) from None
        except OSError as exc:  # changed since it was checked
            raise CommandError(f"cannot load the TLS files: {reason(exc)}") from None
    return ClientSecurity(context, hostname, token, args.token_env)
