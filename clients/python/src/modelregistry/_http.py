"""HTTP to the object store (presigned downloads and direct uploads): a short connect timeout.

Both paths have a gRPC fallback, taken when the store cannot be reached from this machine (the
registry hands out an endpoint only its own network routes). A refused connection or an
unknown host fails at once; a firewall that drops packets does not, and with urllib's single
timeout the wait for the connection was the 60 s allowed for each read or write of a transfer
that is under way: a minute per parallel worker before a push or a pull fell back. Here the
connection (and a TLS handshake, and a proxy's CONNECT) must be up within
``CONNECT_TIMEOUT_S``; after that each socket operation has ``IO_TIMEOUT_S``.

urllib (not a new dependency) keeps what callers rely on: the proxy variables are honoured, and
HTTPS verifies against the system's certificates.
"""

from __future__ import annotations

import http.client
import urllib.request
from typing import Any

CONNECT_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 60.0  # per socket operation, not for the whole file


class _QuickConnect:
    """Connect under ``CONNECT_TIMEOUT_S``, then give the socket the request's own timeout."""

    timeout: Any  # seconds; http.client's default is a sentinel object (urlopen always sets it)
    sock: Any

    def connect(self) -> None:
        io_timeout = self.timeout if isinstance(self.timeout, (int, float)) else IO_TIMEOUT_S
        # CONNECT_TIMEOUT_S is read at call time, so that tests can shorten it.
        self.timeout = min(CONNECT_TIMEOUT_S, io_timeout)
        try:
            super().connect()  # type: ignore[misc]
        finally:
            self.timeout = io_timeout
        self.sock.settimeout(io_timeout)


class _HTTPConnection(_QuickConnect, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_QuickConnect, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


def urlopen(request: urllib.request.Request) -> http.client.HTTPResponse:
    """``urllib.request.urlopen(request)`` with the two timeouts above.

    Raises:
        urllib.error.HTTPError: The store answered with an error status.
        OSError: The store could not be reached in time, or the connection broke.
    """
    # A new opener each time, as urllib's own urlopen would not do: it reads the proxy
    # variables now, so a process that changes them is served by the current ones.
    opener = urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)
    response: http.client.HTTPResponse = opener.open(request, timeout=IO_TIMEOUT_S)
    return response
