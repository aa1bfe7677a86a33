"""What the `supporthub` command exits with, and the error that carries one.

    0  done (doctor: every check passed)
    1  failed: a doctor check, a simulation that could not run, an unexpected error
    2  usage or configuration: a bad option, a missing or invalid setting
    3  the address to listen on is taken (another process holds the port)
    4  unreachable: PostgreSQL, Redis or the hub did not answer
    5  data directory: none found, not a supporthub data directory, or in use

A process manager's SIGTERM or a Ctrl-C ends `dev`, `serve` and `payments` by that
signal, after a clean stop (128 + the signal number in a shell).
"""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
PORT_IN_USE = 3
UNREACHABLE = 4
DATA_DIR = 5

SUMMARY = """exit codes:
  0  done            1  failed (a doctor check, an unexpected error)
  2  usage or configuration error
  3  the port is in use
  4  PostgreSQL, Redis or the hub unreachable
  5  data directory missing, foreign or in use"""


class CommandError(Exception):
    """An error the operator can fix: printed as one line (no traceback), then the
    process exits with `code`."""

    def __init__(self, message: str, code: int = FAILED):
        super().__init__(message)
        self.message = message
        self.code = code
