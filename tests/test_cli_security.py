"""The TLS and token options of ``asyncrpc serve`` and the client commands.

Mistakes are found before any I/O, each one line and exit status 2, and no
token ever appears in what the command prints. End to end, ``asyncrpc serve``
runs as a process with real certificates (a throwaway CA from ``trustme``)
and ``asyncrpc call`` talks to it in-process; both run on the test's loop.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from asyncrpc.cli import ExitStatus
from asyncrpc.cli.call import make_connector
from asyncrpc.cli.security import ClientSecurity, ServerSecurity, is_loopback
from asyncrpc.cli.serve import warn_if_open
from tests.cli_helpers import cli, same_loop, serving

Capture = pytest.CaptureFixture[str]

TOKEN = "tok-3f9a1c7e5b"
OTHER_TOKEN = "tok-other-8d2e"

SERVICE = """\
import asyncrpc

__all__ = ["add", "whoami"]


def add(a: int, b: int) -> int:
    return a + b


def whoami() -> list[object]:
    call = asyncrpc.current_call()
    certificate = call.peer_certificate
    if certificate is None:
        return [call.principal, None]
    return [call.principal, dict(item[0] for item in certificate["subject"])["commonName"]]
"""


@dataclass
class Files:
    """A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, a token file."""

    dir: Path
    ca: str
    server_cert: str
    server_key: str
    client_both: str
    client_cert: str
    client_key: str
    tokens: str
    other_ca: str

    def write(self, name: str, data: str | bytes, mode: int = 0o600) -> str:
        path = self.dir / name
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
        path.chmod(mode)
        return str(path)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example", common_name="client.example")
    paths = {
        name: str(tmp_path / f"{name}.pem")
        for name in ("ca", "scert", "skey", "cboth", "ccert", "ckey", "oca")
    }
    ca.cert_pem.write_to_path(paths["ca"])
    server.cert_chain_pems[0].write_to_path(paths["scert"])
    server.private_key_pem.write_to_path(paths["skey"])
    client.private_key_and_cert_chain_pem.write_to_path(paths["cboth"])
    client.cert_chain_pems[0].write_to_path(paths["ccert"])
    client.private_key_pem.write_to_path(paths["ckey"])
    trustme.CA().cert_pem.write_to_path(paths["oca"])
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who may call\n\nalice {TOKEN}\n  bob   {OTHER_TOKEN}\n")
    tokens.chmod(0o600)
    (tmp_path / "tls_service.py").write_text(SERVICE)
    return Files(
        tmp_path,
        paths["ca"],
        paths["scert"],
        paths["skey"],
        paths["cboth"],
        paths["ccert"],
        paths["ckey"],
        str(tokens),
        paths["oca"],
    )


def no_token_in(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert OTHER_TOKEN not in text


# -- serve: mistakes, before anything is imported or listened on -------------------------------


async def test_token_file_mistakes(capsys: Capture, files: Files) -> None:
    cases = {
        files.write(
            "three", f"alice {TOKEN} extra\n"
        ): "line 1: expected PRINCIPAL TOKEN (two words), found 3 words",
        files.write(
            "one", f"# fine\n{TOKEN}\n"
        ): "line 2: expected PRINCIPAL TOKEN (two words), found 1 word",
        files.write("twice", f"alice {TOKEN}\nbob {TOKEN}\n"): "line 2: the same token as line 1 "
        "(each token names one principal)",
        files.write("empty", "# nobody yet\n\n"): "holds no tokens (one PRINCIPAL TOKEN pair a line)",
        files.write("binary", b"alice \xff\xfe\n"): "is not UTF-8 text",
    }
    for path, message in cases.items():
        ran = await cli(capsys, "serve", "tests.services:Demo", "--port", "0", "--token-file", path)
        assert ran.status == ExitStatus.USAGE
        line = ran.error_line
        assert line.startswith(f"error: --token-file {path}"), line
        assert line.endswith(message), line
        no_token_in(ran.out, ran.err)
    missing = str(files.dir / "missing")
    ran = await cli(capsys, "serve", "tests.services:Demo", "--token-file", missing)
    assert ran.error_line == f"error: cannot read --token-file {missing}: no such file or directory"


async def test_a_token_file_others_can_read_is_warned_about(capsys: Capture, files: Files) -> None:
    os.chmod(files.tokens, 0o644)
    # The target does not exist: the run stops there, after the token file was read.
    ran = await cli(capsys, "serve", "nosuchmodule:X", "--token-file", files.tokens)
    warning, error = ran.err.splitlines()
    assert warning == (
        f"warning: --token-file {files.tokens} has mode 0644: others on this machine can read its tokens "
        f"(chmod 600 {files.tokens})"
    )
    assert error.startswith("error: cannot import 'nosuchmodule'")
    os.chmod(files.tokens, 0o600)
    ran = await cli(capsys, "serve", "nosuchmodule:X", "--token-file", files.tokens)
    assert ran.error_line.startswith("error: cannot import 'nosuchmodule'")  # and nothing else


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
async def test_an_unreadable_key_is_named(capsys: Capture, files: Files) -> None:
    os.chmod(files.server_key, 0)
    ran = await cli(
        capsys, "serve", "tests.services:Demo", "--tls-cert", files.server_cert, "--tls-key", files.server_key
    )
    assert ran.error_line == f"error: cannot read --tls-key {files.server_key}: permission denied"


async def test_tls_file_mistakes(capsys: Capture, files: Files) -> None:
    garbage = files.write("garbage.pem", "not a certificate\n")
    other_key = files.write("other-key.pem", trustme.CA().issue_cert("x").private_key_pem.bytes())
    encrypted = files.write(
        "encrypted.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    missing = str(files.dir / "missing.pem")
    cert, key = files.server_cert, files.server_key
    cases: list[tuple[list[str], str]] = [
        (["--tls-key", key], "--tls-key needs --tls-cert FILE (the server's certificate)"),
        (["--tls-client-ca", files.ca], "--tls-client-ca needs --tls-cert FILE (the server's certificate)"),
        (
            ["--tls-cert", missing, "--tls-key", key],
            f"cannot read --tls-cert {missing}: no such file or directory",
        ),
        (
            ["--tls-cert", garbage, "--tls-key", key],
            f"--tls-cert {garbage} holds no certificate (PEM, '-----BEGIN CERTIFICATE-----')",
        ),
        (
            ["--tls-cert", cert],
            f"--tls-cert {cert} holds no private key (PEM): give the key with --tls-key FILE",
        ),
        (
            ["--tls-cert", cert, "--tls-key", garbage],
            f"--tls-key {garbage} holds no private key (PEM): give the certificate's private key",
        ),
        (
            ["--tls-cert", cert, "--tls-key", other_key],
            f"the private key in --tls-key {other_key} does not belong to the certificate in {cert}",
        ),
        (
            ["--tls-cert", cert, "--tls-key", encrypted],
            f"the private key in --tls-key {encrypted} is encrypted: give it unencrypted "
            "(openssl pkey -in KEY -out PLAIN), in a file only this user can read",
        ),
        (
            ["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", garbage],
            f"--tls-client-ca {garbage} holds no certificate (PEM, '-----BEGIN CERTIFICATE-----')",
        ),
        (
            ["--token-file", files.tokens, "--raw-strings"],
            "--token-file needs clients that send asyncrpc's hello (where the token travels): "
            "not with --raw-strings",
        ),
    ]
    for argv, message in cases:
        ran = await cli(capsys, "serve", "tests.services:Demo", "--port", "0", *argv)
        assert ran.status == ExitStatus.USAGE, argv
        assert ran.error_line == f"error: {message}"


# -- the clients: mistakes, before any I/O --------------------------------------------------------


async def test_client_option_mistakes(capsys: Capture, files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCRPC_TEST_UNSET", raising=False)
    monkeypatch.setenv("ASYNCRPC_TEST_EMPTY", " ")
    garbage = files.write("garbage.pem", "nothing here\n")
    # Port 9 (discard) on loopback: nothing is ever connected to, as every case fails first.
    cases: list[tuple[list[str], str]] = [
        (
            ["--token-env", "ASYNCRPC_TEST_UNSET"],
            "--token-env ASYNCRPC_TEST_UNSET: the environment variable ASYNCRPC_TEST_UNSET is not set",
        ),
        (
            ["--token-env", "ASYNCRPC_TEST_EMPTY"],
            "--token-env ASYNCRPC_TEST_EMPTY: the environment variable ASYNCRPC_TEST_EMPTY is empty",
        ),
        (
            ["--tls-key", files.client_key],
            "--tls-key needs --tls-cert FILE (the certificate that goes with the key)",
        ),
        (["--server-hostname", "localhost"], "--server-hostname is for TLS: add --tls, or --tls-ca FILE"),
        (
            ["--tls-ca", garbage],
            f"--tls-ca {garbage} holds no certificate (PEM, '-----BEGIN CERTIFICATE-----')",
        ),
        (
            ["--tls-ca", files.ca, "--tls-cert", files.client_cert],
            f"--tls-cert {files.client_cert} holds no private key (PEM): give the key with --tls-key FILE",
        ),
    ]
    for command in (["call", "127.0.0.1:9", "add"], ["list", "127.0.0.1:9"], ["stubgen", "127.0.0.1:9"]):
        for argv, message in cases:
            ran = await cli(capsys, *command, *argv)
            assert ran.status == ExitStatus.USAGE, (command, argv)
            assert ran.error_line == f"error: {message}"
    path = str(files.dir / "rpc.sock")
    ran = await cli(capsys, "call", path, "add", "--tls-ca", files.ca)
    assert ran.error_line == (
        f"error: TLS over the Unix socket {path} needs --server-hostname NAME "
        "(a name its certificate carries)"
    )
    monkeypatch.setenv("ASYNCRPC_TEST_TOKEN", TOKEN)
    ran = await cli(
        capsys, "call", "127.0.0.1:9", "add", "--raw-strings", "--token-env", "ASYNCRPC_TEST_TOKEN"
    )
    assert ran.error_line == (
        "error: --token-env: the token travels in asyncrpc's hello, which --raw-strings does not send"
    )
    no_token_in(ran.out, ran.err)


def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST", "localhost.", "::ffff:127.0.0.1"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.1", "192.168.1.5", "example.com", "2001:db8::1"):
        assert not is_loopback(host), host


@pytest.mark.parametrize(
    ("host", "unix", "security", "said"),
    [
        ("0.0.0.0", None, ServerSecurity(), "without TLS or a token"),
        ("::", None, ServerSecurity(ssl=object()), "over TLS but with no token or client certificate"),  # type: ignore[arg-type]
        ("0.0.0.0", None, ServerSecurity(tokens={"t": "p"}), None),
        ("0.0.0.0", None, ServerSecurity(ssl=object(), client_ca=True), None),  # type: ignore[arg-type]
        ("127.0.0.1", None, ServerSecurity(), None),
        (None, None, ServerSecurity(), None),  # the default host is 127.0.0.1
        ("localhost", None, ServerSecurity(), None),
        (None, "/tmp/rpc.sock", ServerSecurity(), None),
    ],
)
def test_serving_off_loopback_with_nobody_authenticated_warns(
    capsys: Capture, host: str | None, unix: str | None, security: ServerSecurity, said: str | None
) -> None:
    warn_if_open(argparse.Namespace(host=host, unix=unix), security, "HOST:6000")
    err = capsys.readouterr().err
    if said is None:
        assert err == ""
        return
    assert err.count("\n") == 1
    assert err.startswith(
        f"warning: serving on HOST:6000 {said}: anyone who can reach the port can call every served method ("
    )


# -- end to end: a TLS server with tokens, and the clients --------------------------------------


async def test_call_over_tls_with_a_token(
    capsys: Capture, files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = ["--tls-cert", files.server_cert, "--tls-key", files.server_key]
    async with serving(
        "tls_service",
        "--port",
        "0",
        *tls,
        "--token-file",
        files.tokens,
        cwd=files.dir,
        options=same_loop(),
    ) as served:
        address = served.address
        monkeypatch.setenv("RPC_TOKEN", TOKEN)
        ran = await cli(
            capsys, "call", address, "add", "1", "2", "--tls-ca", files.ca, "--token-env", "RPC_TOKEN"
        )
        assert (ran.status, ran.out, ran.err) == (0, "3\n", "")
        ran = await cli(capsys, "call", address, "whoami", "--tls-ca", files.ca, "--token-env", "RPC_TOKEN")
        assert (ran.status, ran.out) == (0, '["alice", null]\n')
        # localhost is a name the certificate carries too
        port = address.rpartition(":")[2]
        ran = await cli(
            capsys,
            "call",
            f"localhost:{port}",
            "add",
            "2",
            "2",
            "--tls-ca",
            files.ca,
            "--token-env",
            "RPC_TOKEN",
        )
        assert (ran.status, ran.out) == (0, "4\n")
        ran = await cli(capsys, "list", address, "--tls-ca", files.ca, "--token-env", "RPC_TOKEN")
        assert (ran.status, ran.out.split()) == (0, ["add", "whoami"])

        monkeypatch.setenv("RPC_TOKEN", "not-the-token")
        ran = await cli(
            capsys, "call", address, "add", "1", "2", "--tls-ca", files.ca, "--token-env", "RPC_TOKEN"
        )
        assert ran.status == ExitStatus.USAGE
        assert ran.error_line == (
            f"error: {address} refused the connection: the server did not accept the token "
            "(is --token-env naming the right variable?)"
        )
        assert "not-the-token" not in ran.err
        ran = await cli(capsys, "call", address, "add", "1", "2", "--tls-ca", files.ca)
        assert ran.error_line == (
            f"error: {address} refused the connection: the server requires a token "
            "(give it with --token-env VAR)"
        )
        ran = await cli(
            capsys, "call", address, "add", "1", "2", "--tls-ca", files.other_ca, "--token-env", "RPC_TOKEN"
        )
        assert ran.status == ExitStatus.USAGE
        assert ran.error_line.startswith(
            f"error: TLS with {address} failed: its certificate is not accepted: "
        )
        ran = await cli(
            capsys,
            "call",
            address,
            "add",
            "--tls-ca",
            files.ca,
            "--server-hostname",
            "elsewhere.example",
            "--token-env",
            "RPC_TOKEN",
        )
        assert ran.error_line.startswith(
            f"error: TLS with {address} failed: its certificate is not accepted: "
        )
        assert "elsewhere.example" in ran.error_line
        # Plaintext against the TLS port: a clear no, within --connect-timeout.
        ran = await cli(capsys, "call", address, "add", "1", "2", "--connect-timeout", "2")
        assert ran.status == ExitStatus.USAGE
        assert ran.error_line == (
            f"error: {address} closed the connection without answering: is it a msgpack-rpc server? "
            "(if it speaks TLS: --tls, or --tls-ca FILE)"
        )
    no_token_in(served.stderr)
    assert "warning" not in served.stderr


async def test_mutual_tls(capsys: Capture, files: Files) -> None:
    tls = ["--tls-cert", files.server_cert, "--tls-key", files.server_key, "--tls-client-ca", files.ca]
    async with serving("tls_service", "--port", "0", *tls, cwd=files.dir, options=same_loop()) as served:
        address = served.address
        ran = await cli(
            capsys, "call", address, "whoami", "--tls-ca", files.ca, "--tls-cert", files.client_both
        )
        assert (ran.status, ran.out) == (0, '[null, "client.example"]\n')
        ran = await cli(
            capsys,
            "call",
            address,
            "add",
            "1",
            "2",
            "--tls-ca",
            files.ca,
            "--tls-cert",
            files.client_cert,
            "--tls-key",
            files.client_key,
        )
        assert (ran.status, ran.out) == (0, "3\n")
        # Without a client certificate: refused (over TLS 1.3, only once the handshake is over).
        ran = await cli(
            capsys, "call", address, "add", "1", "2", "--tls-ca", files.ca, "--connect-timeout", "2"
        )
        assert (ran.status, ran.out) == (ExitStatus.USAGE, "")
        assert ran.error_line == (
            f"error: {address} closed the TLS connection without answering: does it require a client "
            "certificate? (--tls-cert FILE)"
        )


async def test_tls_and_a_token_over_a_unix_socket(
    capsys: Capture, files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(files.dir / "rpc.sock")
    tls = ["--tls-cert", files.server_cert, "--tls-key", files.server_key]
    async with serving(
        "tls_service",
        "--unix",
        path,
        *tls,
        "--token-file",
        files.tokens,
        cwd=files.dir,
        options=same_loop(),
    ):
        monkeypatch.setenv("RPC_TOKEN", OTHER_TOKEN)
        ran = await cli(
            capsys,
            "call",
            path,
            "whoami",
            "--tls-ca",
            files.ca,
            "--server-hostname",
            "localhost",
            "--token-env",
            "RPC_TOKEN",
        )
        assert (ran.status, ran.out) == (0, '["bob", null]\n')
    assert not os.path.exists(path)  # removed on the way out


def test_a_token_sent_unencrypted_off_loopback_is_warned_about(capsys: Capture) -> None:
    """Nothing is connected to: the options are only checked."""
    security = ClientSecurity(token=TOKEN, token_env="RPC_TOKEN")
    make_connector("192.0.2.1:6000", 5.0, security=security)  # TEST-NET-1: never reached
    err = capsys.readouterr().err
    assert err == (
        "warning: the token from $RPC_TOKEN goes to 192.0.2.1:6000 unencrypted: anyone on the way can "
        "read it (add --tls, or --tls-ca FILE)\n"
    )
    make_connector("127.0.0.1:6000", 5.0, security=security)
    make_connector(
        "192.0.2.1:6000", 5.0, security=ClientSecurity(ssl=True, token=TOKEN, token_env="RPC_TOKEN")
    )
    assert capsys.readouterr().err == ""
