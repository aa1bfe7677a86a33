"""One TLS context for every outgoing HTTP client of a process.

httpx makes a new `ssl.SSLContext` for each client built without `verify=`, and loads
the CA bundle into it: about 0.8 MiB of OpenSSL memory, outside the Python heap (and so
outside what tracemalloc sees). Once a client has sent a request, its connection pool
and connections refer to each other, so that memory is given back only when the cyclic
garbage collector runs, which `supporthub serve` does rarely (`gc.freeze()` and a high
young-generation threshold, hub.cli). A client made per poll (the outbox poller, every
5 s) grew a node by ~5 MiB every 30 s, for as long as it ran. Clients made per call
(webhooks, the bot's payments lookups) take this context, made once, instead.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's TLS context for outgoing requests (certificates verified against
    httpx's CA bundle, as a client built without `verify=` does)."""
    return httpx.create_ssl_context()
