"""``python -m asyncrpc`` is the ``asyncrpc`` command."""

import sys

from asyncrpc.cli import main

sys.exit(main())
