"""What the two ends of a connection agreed on in the hello (see ``docs/protocol.md``)."""

from __future__ import annotations

from dataclasses import dataclass

from asyncrpc.wire import extensions as ext

__all__ = ["Negotiated"]


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What both ends agreed on in the hello. A plain peer agreed on nothing.

    ``client.connection.negotiated``; read it, never build one. Until the
    hello is answered (and for a plain peer, always) ``features`` is empty.

    Attributes:
        features: the extensions both ends speak.
        max_message_size: the largest message the peer accepts, in bytes (our
            own limit when the peer announced none).
        cancel: the peer understands cancel notifications.
        deadline: the peer understands deadlines sent with a request.
        errors: the peer reads structured error maps.
    """

    features: frozenset[str]
    max_message_size: int
    cancel: bool
    deadline: bool
    errors: bool

    @classmethod
    def agree(cls, offered: frozenset[str], max_message_size: int) -> Negotiated:
        """What to use with a peer that offered ``offered`` and accepts ``max_message_size`` bytes.

        Features asyncrpc does not know are left out.
        """
        features = offered & ext.FEATURES
        return cls(
            features,
            max_message_size,
            ext.FEATURE_CANCEL in features,
            ext.FEATURE_DEADLINE in features,
            ext.FEATURE_ERRORS in features,
        )
