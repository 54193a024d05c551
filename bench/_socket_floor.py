"""The floor of *any* relay on this machine: bytes received on one socket, sent on another.

``bench/artifacts.py`` runs this script in the same rounds as the registry's transfers. It starts
a source (``--source``: the file, ``sendfile`` to a socket) and a sink (``--sink``: reads and
drops) as child processes, and relays between them in its own main thread over loopback TCP,
exactly as the artifact service sits between a client and MinIO, but with no protocol at all:
no HTTP/2 framing, no S3 request, no message objects, one reused 1 MiB buffer. With
``--sha256`` it also hashes every byte, as a verified upload must. It prints one JSON line: the
relay's own CPU seconds (user + system, the children excluded) and wall seconds.

What it shows: whatever the language or the protocol, a relay that receives, hashes and sends
on pays at least these CPU seconds per GiB on this machine, because the kernel copies each byte
once in and once out of user memory (on loopback the sender also runs the receiving side's TCP
work). ``bench/README.md`` ("Where the CPU goes") reads the figures against issue 16's targets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

CHUNK = 1 << 20


def _listen() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener


def _child(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args])


def _source(port: int, path: Path) -> None:
    with socket.create_connection(("127.0.0.1", port)) as out, path.open("rb") as data:
        size = os.fstat(data.fileno()).st_size
        sent = 0
        while sent < size:
            sent += os.sendfile(out.fileno(), data.fileno(), sent, size - sent)


def _sink(port: int) -> None:
    view = memoryview(bytearray(CHUNK))
    with socket.create_connection(("127.0.0.1", port)) as source:
        while source.recv_into(view):
            pass


def _relay(path: Path, sha256: bool) -> dict[str, float | int | str]:
    from_source, to_sink = _listen(), _listen()
    sink = _child("--sink", str(to_sink.getsockname()[1]))
    out, _ = to_sink.accept()
    source = _child("--source", str(from_source.getsockname()[1]), str(path))
    incoming, _ = from_source.accept()
    view = memoryview(bytearray(CHUNK))
    hasher = hashlib.sha256()
    total = 0
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    while n := incoming.recv_into(view):
        if sha256:
            hasher.update(view[:n])
        out.sendall(view[:n])
        total += n
    after, seconds = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - start
    out.close()
    if source.wait(60) or sink.wait(60):
        raise RuntimeError("the socket floor's source or sink failed")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    report: dict[str, float | int | str] = {"cpu": cpu, "seconds": seconds, "nbytes": total}
    if sha256:
        report["sha256"] = hasher.hexdigest()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="the CPU floor of any relay over loopback TCP")
    parser.add_argument("--source", nargs=2, metavar=("PORT", "FILE"))
    parser.add_argument("--sink", metavar="PORT")
    parser.add_argument("--sha256", action="store_true", help="hash every byte relayed")
    parser.add_argument("file", nargs="?", type=Path, help="the bytes to relay")
    args = parser.parse_args()
    if args.source:
        _source(int(args.source[0]), Path(args.source[1]))
    elif args.sink:
        _sink(int(args.sink))
    elif args.file:
        print(json.dumps(_relay(args.file, args.sha256)))
    else:
        parser.error("give the file to relay")


if __name__ == "__main__":
    main()
