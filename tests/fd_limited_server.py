"""A server run in a subprocess with few file descriptors left (``RLIMIT_NOFILE`` lowered).

``python -m tests.fd_limited_server LOOP HEADROOM``: starts a server on a free
loopback port on ``LOOP`` (``asyncio`` or ``uvloop``), then lowers the soft
limit on open files to what the process holds plus ``HEADROOM``, so that
``HEADROOM`` clients fit and the next accept fails with ``EMFILE``. It prints
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


async def serve(headroom: int) -> None:
    root = logging.getLogger()
    root.addHandler(OneLinePerRecord())
    root.setLevel(logging.INFO)
    server = make_server()
    await server.start("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    held = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself opened
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (held + headroom, hard))
    print(f"PORT {server.port}", flush=True)
    await stdin.read()  # until the test closes our stdin
    await server.close(grace=0.5)


def main() -> None:
    loop_name, headroom = sys.argv[1], int(sys.argv[2])
    if loop_name == "uvloop":
        import uvloop

        uvloop.run(serve(headroom))
    else:
        asyncio.run(serve(headroom))


if __name__ == "__main__":
    main()
