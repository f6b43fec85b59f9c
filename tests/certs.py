"""Real certificates for the TLS tests, from a throwaway CA (``trustme``).

:class:`Certs` holds a CA the tests trust, certificates it signed (a server's
for 127.0.0.1 and localhost, a client's, an expired server one), another CA
nobody trusts, and every one of them written as PEM files, for code that
takes paths (``asyncrpc.tls``, the command line).
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

import asyncrpc.tls


@dataclass(frozen=True)
class Certs:
    """PEM files: ``ca`` (trusted), ``server``/``server_key``, ``client``/``client_key``,
    ``expired``/``expired_key``, and ``stranger``/``stranger_key`` (signed by a CA nobody trusts)."""

    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path
    expired: Path
    expired_key: Path
    stranger: Path
    stranger_key: Path

    def server_context(self, *, mutual: bool = False) -> ssl.SSLContext:
        """The server's context; with ``mutual``, client certificates from our CA are required."""
        return asyncrpc.tls.server_context(
            str(self.server), str(self.server_key), client_ca=str(self.ca) if mutual else None
        )

    def client_context(self, *, with_certificate: bool = False) -> ssl.SSLContext:
        """A client's context trusting our CA; with ``with_certificate``, presenting the client's."""
        if with_certificate:
            return asyncrpc.tls.client_context(
                ca=str(self.ca), cert=str(self.client), key=str(self.client_key)
            )
        return asyncrpc.tls.client_context(ca=str(self.ca))


def make_certs(directory: Path) -> Certs:
    """A fresh CA and its certificates, written to ``directory``."""
    ca = trustme.CA(organization_name="asyncrpc tests")
    stranger_ca = trustme.CA(organization_name="nobody trusts this")
    now = datetime.datetime.now(datetime.UTC)
    leaves = {
        "server": ca.issue_cert("127.0.0.1", "localhost"),
        "client": ca.issue_cert("client.example", common_name="alice"),
        "expired": ca.issue_cert(
            "127.0.0.1",
            "localhost",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        ),
        "stranger": stranger_ca.issue_cert("127.0.0.1", "localhost", common_name="mallory"),
    }
    paths: dict[str, Path] = {"ca": directory / "ca.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    for name, leaf in leaves.items():
        paths[name] = directory / f"{name}.pem"
        paths[f"{name}_key"] = directory / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(paths[name]))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(paths[name]), append=True)
        leaf.private_key_pem.write_to_path(str(paths[f"{name}_key"]))
    return Certs(**paths)
