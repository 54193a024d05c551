"""The SDK's HTTP to the object store (``modelregistry._http``) against real local sockets.

A store that drops packets must cost a push or a pull ``CONNECT_TIMEOUT_S`` before it falls
back to gRPC, not the minute a transfer under way may wait for each read; a store that is
reachable but slow to answer must not be cut off by that short timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from modelregistry import _http


@contextlib.contextmanager
def _black_hole() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, as a firewall would."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):  # never accepted: they fill the queue
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        time.sleep(0.2)
        yield port


@contextlib.contextmanager
def _answering_after(delay: float, body: bytes = b"weights") -> Iterator[int]:
    """A port that accepts, reads the request, waits ``delay`` seconds, then answers 200."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            if done.wait(delay):
                return
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(10)
        listener.close()


def test_an_unanswered_connect_gives_up_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_http, "CONNECT_TIMEOUT_S", 0.5)
    with _black_hole() as port:
        started = time.monotonic()
        with pytest.raises(urllib.error.URLError) as raised:
            _http.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/blob"))
        waited = time.monotonic() - started
    assert isinstance(raised.value.reason, TimeoutError)
    # IO_TIMEOUT_S is 60 s: the connect had its own, shorter limit.
    assert waited < 5, waited


def test_a_slow_answer_is_not_cut_off_by_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_http, "CONNECT_TIMEOUT_S", 0.3)
    with (
        _answering_after(1.0) as port,
        _http.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/blob")) as response,
    ):
        assert response.status == 200
        assert response.read() == b"weights"


def test_a_stalled_transfer_gives_up_after_the_io_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_http, "IO_TIMEOUT_S", 0.5)
    with _answering_after(30.0) as port:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _http.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/blob"))
        assert time.monotonic() - started < 5
