"""A server run in a subprocess with few file descriptors left (``RLIMIT_NOFILE`` lowered).

``python -m tests.fd_limited_server LOOP HEADROOM WHEN``: starts a server on a
free loopback port on ``LOOP`` (``asyncio`` or ``uvloop``) and lowers the soft
limit on open files to what the process holds plus ``HEADROOM``, so that about
``HEADROOM`` clients fit: ``WHEN`` is ``at-start`` (before the server starts,
which then serves fewer) or ``later`` (after: the next accept fails with
``EMFILE``). It prints
``PORT <port>`` on stdout, writes every log record as one line on stderr
(``LOG <logger> <level> <message> [<exception>]``) and serves until its stdin
is closed. The test process itself never runs short of descriptors.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys

from tests.services import make_server


class OneLinePerRecord(logging.Handler):
    """Each record as a single line, so that a test counts records, not traceback lines."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().replace("\n", " | ")
        if record.exc_info is not None and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" [{type(exc).__name__}: {exc}]"
        sys.stderr.write(f"LOG {record.name} {record.levelname} {message}\n")
        sys.stderr.flush()


def _lower_limit(headroom: int) -> None:
    held = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself opened
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (held + headroom, hard))


async def serve(headroom: int, lowered: str) -> None:
    root = logging.getLogger()
    root.addHandler(OneLinePerRecord())
    root.setLevel(logging.INFO)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    server = make_server()
    if lowered == "at-start":
        _lower_limit(headroom + 2)  # and the listening socket
    await server.start("127.0.0.1", 0)
    if lowered == "later":
        _lower_limit(headroom)
    print(f"PORT {server.port}", flush=True)
    await stdin.read()  # until the test closes our stdin
    await server.close(grace=0.5)


def main() -> None:
    loop_name, headroom, lowered = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if loop_name == "uvloop":
        import uvloop

        uvloop.run(serve(headroom, lowered))
    else:
        asyncio.run(serve(headroom, lowered))


if __name__ == "__main__":
    main()
