"""Authentication: who is calling, decided once per connection, before any call runs.

A server made with ``auth=`` lets a connection in only after its hello: the
client's token travels in the hello (``connect(token=...)``), and the
server's authenticator turns it, with what is known of the peer
(:class:`PeerInfo`: its address and, over mutual TLS, its verified
certificate), into a *principal*, any value naming who is calling, or
``None`` to refuse. Handlers read the principal as
``current_call().principal``.

Until a connection is let in, the server answers nothing but the hello: any
other request gets an :class:`~asyncrpc.Unauthenticated` error and the
connection is closed; so a plain msgpack-rpc peer, which never says hello,
cannot call an authenticated server. A refused hello is answered with
:class:`~asyncrpc.AuthenticationFailed` (which ``connect()`` raises) and the
connection is closed.

:class:`TokenAuth` is the authenticator for a fixed set of tokens. Tokens are
compared in constant time (every known token is compared, each as a SHA-256
digest, so neither the length nor the first differing byte shows in the
timing), and no token appears in a log line, a ``repr`` or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["Authenticator", "PeerInfo", "TokenAuth", "check_authenticator"]


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What the server knows of a peer when it decides whether to let it in.

    Attributes:
        address: ``host:port`` of a TCP peer, or the Unix socket path.
        certificate: the peer's verified TLS certificate, as
            :meth:`ssl.SSLSocket.getpeercert` gives it; ``None`` without TLS or
            without a client certificate.
    """

    address: str
    certificate: dict[str, Any] | None = None


Authenticator: TypeAlias = Callable[[str | None, PeerInfo], Any]
"""What ``Server(auth=)`` takes: called with the token from the hello (``None`` if
the client sent none) and the :class:`PeerInfo`; returns the principal, or
``None`` to refuse; may be ``async def``. An authenticator that raises refuses
too (logged, without the token)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenAuth:
    """An authenticator for a fixed set of tokens, each naming its principal.

    Args:
        tokens: a mapping from each token to its principal (any value but
            ``None``; a user name, a dict of rights).

    Raises:
        TypeError: a token is not a str.
        ValueError: no tokens, an empty token, or a ``None`` principal.

    Example::

        server = asyncrpc.Server(auth=asyncrpc.TokenAuth({os.environ["RPC_TOKEN"]: "deploy-bot"}))
    """

    __slots__ = ("_entries",)

    def __init__(self, tokens: Mapping[str, Any]) -> None:
        entries: list[tuple[bytes, Any]] = []
        for token, principal in tokens.items():
            if not isinstance(token, str):
                raise TypeError(f"tokens must be str, not {type(token).__name__}")
            if not token:
                raise ValueError("a token must not be empty")
            if principal is None:
                raise ValueError("a token's principal must not be None (None means refused)")
            entries.append((_digest(token), principal))
        if not entries:
            raise ValueError("TokenAuth needs at least one token")
        self._entries = tuple(entries)

    def __call__(self, token: str | None, peer: PeerInfo) -> Any:
        """The principal of ``token``, or ``None`` for a missing or unknown one."""
        given = _digest(token if isinstance(token, str) else "")
        found: Any = None
        for digest, principal in self._entries:
            # No early exit: every entry is compared, whichever matches.
            if hmac.compare_digest(given, digest) and token:
                found = principal
        return found

    def __repr__(self) -> str:
        return f"<asyncrpc.TokenAuth: {len(self._entries)} token(s)>"


def check_authenticator(auth: object) -> None:
    """Raise ``TypeError`` unless ``auth`` is ``None`` or callable."""
    if auth is not None and not callable(auth):
        raise TypeError(f"auth must be a TokenAuth or a callable, not {type(auth).__name__}")
