"""A minimal model server that follows a registry alias.

At start-up it pulls ``MODEL@production`` from the registry (files land in the SDK's cache, so a
restart downloads nothing), loads ``model.safetensors`` (a ``weight`` matrix and a ``bias``
vector) and answers:

    POST /predict   {"inputs": [x1, x2, ...]}  ->  {"outputs": W @ x + b, "model_version": N}
                    (a list of input rows gives a list of output rows)
    GET  /healthz   {"status": "ok", "model": ..., "alias": ..., "model_version": N}

It subscribes to the model's events before that first pull (``wait_subscribed``), so a move
that lands in between is not missed. A background thread follows the events. When the alias
moves, it pulls the new version,
loads it completely, and only then swaps it in with one reference assignment: a request reads
``state.current`` once, so it never sees half-loaded weights. A reload that fails is logged and
the old version keeps serving.

Offline (``MODELREGISTRY_OFFLINE=1``) it serves the version this machine last pulled for the
alias, from the cache, without talking to the registry (and without watching it).

Run ``python server.py --help`` for the flags; see README.md for a walkthrough.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file

from modelregistry import Client, RegistryError, WatchStream

WEIGHTS_FILE = "model.safetensors"
log = logging.getLogger("serving")


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class LoadedModel:
    """One version's weights, fully in memory. Never modified: a reload builds a new one."""

    version: int
    weight: npt.NDArray[np.float32]  # shape (outputs, inputs)
    bias: npt.NDArray[np.float32]  # shape (outputs,)

    def predict(self, inputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``W @ x + b`` for one input vector, or for each row of a batch."""
        return inputs @ self.weight.T + self.bias


def load_model(folder: Path, version: int) -> LoadedModel:
    """Read ``model.safetensors`` from a pulled version's folder and check its shapes."""
    tensors = load_file(folder / WEIGHTS_FILE)
    weight = tensors["weight"].astype(np.float32)
    bias = tensors["bias"].astype(np.float32)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(f"bad shapes: weight {weight.shape}, bias {bias.shape}")
    return LoadedModel(version, weight, bias)


# ---------------------------------------------------------------------------- following the alias


class ModelState:
    """The model being served, and the code that replaces it when the alias moves."""

    def __init__(self, client: Client, model: str, alias: str) -> None:
        self.client = client
        self.model = model
        self.alias = alias
        self.ref = f"{model}@{alias}"
        self._reload_lock = threading.Lock()  # one reload at a time
        self._stop = threading.Event()
        self._events: WatchStream | None = None
        if not client.offline:
            # Subscribe before the first pull: a move between the two is then an event that
            # reloads, not a change this process never hears of.
            self._events = client.watch(model, event_types=["ALIAS_MOVED"])
            self._events.wait_subscribed()
        self.current = self._fetch()  # start-up: fails loudly if there is nothing to serve

    def _fetch(self) -> LoadedModel:
        """Pull what the alias points at now (from the cache if it is there) and load it."""
        folder = self.client.pull(self.ref)
        # pull() recorded which version the alias resolved to: that record is what offline
        # mode serves, and it names the version whose files are in `folder`.
        pulled = self.client.cache.load_ref(self.ref)
        if pulled is None:  # pragma: no cover - pull always records it
            raise RuntimeError(f"pull of {self.ref} recorded no version")
        return load_model(folder, pulled.version)

    def reload(self) -> None:
        """Serve what the alias points at now; on any failure keep the current version."""
        with self._reload_lock:
            old = self.current
            try:
                new = self._fetch()
            except Exception as exc:  # whatever broke (network, file, format): keep serving
                log.error(
                    "reload of %s failed; still serving version %d: %s", self.ref, old.version, exc
                )
                return
            if new.version != old.version:
                self.current = new  # a single reference assignment: atomic for readers
                log.info("now serving %s version %d (was %d)", self.model, new.version, old.version)

    def watch_forever(self) -> None:
        """Thread body: reload whenever an ALIAS_MOVED event names our alias."""
        ours = f"models/{self.model}/aliases/{self.alias}"
        while not self._stop.is_set():
            try:
                # The SDK reconnects on its own after a registry restart, without missing events.
                # The first round follows the stream opened before the start-up pull.
                events = self._events or self.client.watch(self.model, event_types=["ALIAS_MOVED"])
                with events:
                    self._events = events
                    if self._stop.is_set():  # stop() ran before the stream existed
                        return
                    for event in events:
                        alias = event.alias.rsplit("/", 1)[-1]
                        target = event.model_version.rsplit("/", 1)[-1]
                        log.info("event: alias %s moved to version %s", alias, target)
                        if event.alias == ours:
                            self.reload()
            except RegistryError as exc:  # e.g. the model was deleted: try again later
                log.error("watching %s failed: %s; retrying in 5 s", self.model, exc)
                self._events = None
                if not self._stop.wait(5.0):
                    self.reload()  # catch up on moves made while we were not watching

    def resync_forever(self, interval_s: float) -> None:
        """Thread body: re-check the alias now and then (a watch sees only later moves)."""
        while not self._stop.wait(interval_s):
            self.reload()

    def stop(self) -> None:
        """End the background threads' loops (closing the stream unblocks the watcher)."""
        self._stop.set()
        if self._events is not None:
            self._events.close()


# ---------------------------------------------------------------------------- HTTP


class ModelHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows the model state."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ModelState) -> None:
        super().__init__(address, Handler)
        self.state = state


class Handler(BaseHTTPRequestHandler):
    """``POST /predict`` and ``GET /healthz``."""

    server: ModelHTTPServer

    def do_GET(self) -> None:  # http.server calls do_<METHOD>
        if self.path != "/healthz":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
            return
        state = self.server.state
        self._reply(
            HTTPStatus.OK,
            {
                "status": "ok",
                "model": state.model,
                "alias": state.alias,
                "model_version": state.current.version,
            },
        )

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        if self.path != "/predict":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
            return
        model = self.server.state.current  # read once: this request uses one version throughout
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            inputs = np.asarray(json.loads(body)["inputs"], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f'expected {{"inputs": [...]}}: {exc}'})
            return
        if inputs.ndim not in (1, 2) or inputs.shape[-1] != model.weight.shape[1]:
            self._reply(
                HTTPStatus.BAD_REQUEST,
                {"error": f"inputs must have {model.weight.shape[1]} values per row"},
            )
            return
        outputs = model.predict(inputs)
        self._reply(HTTPStatus.OK, {"outputs": outputs.tolist(), "model_version": model.version})

    def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description="Serve W @ x + b from a safetensors model pulled from the registry, "
        "and switch to the new version when the alias moves.",
        epilog="Offline: MODELREGISTRY_OFFLINE=1 serves the version last pulled for the alias "
        "from the cache, without the registry (and without watching it).",
    )
    parser.add_argument(
        "--model", default=env("SERVING_MODEL"), help="model name (env SERVING_MODEL; required)"
    )
    parser.add_argument(
        "--alias",
        default=env("SERVING_ALIAS", "production"),
        help="alias to serve and follow (env SERVING_ALIAS; default: production)",
    )
    # --registry and --cache-dir default to None: the SDK then reads their environment variables.
    parser.add_argument(
        "--registry", help="registry host:port (env MODELREGISTRY_URL; default: 127.0.0.1:50051)"
    )
    parser.add_argument(
        "--host", default=env("SERVING_HOST", "127.0.0.1"), help="listen address (env SERVING_HOST)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("SERVING_PORT", "8080")),
        help="listen port, 0 for any free one (env SERVING_PORT; default: 8080)",
    )
    parser.add_argument(
        "--cache-dir",
        help="SDK file cache (env MODELREGISTRY_CACHE; default: ~/.cache/modelregistry)",
    )
    parser.add_argument(
        "--resync-interval",
        type=float,
        default=60.0,
        help="also re-check the alias every N seconds, 0 = never (default: 60); the watch "
        "reacts at once, this only catches a move made before the watch was established",
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model (or SERVING_MODEL) is required")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C

    client = Client(args.registry, cache_dir=args.cache_dir)  # offline from the environment too
    try:
        state = ModelState(client, args.model, args.alias)
    except (RegistryError, OSError, ValueError, KeyError) as exc:
        log.error("cannot load %s@%s: %s", args.model, args.alias, exc)
        client.close()
        return 1
    log.info("loaded %s version %d", state.ref, state.current.version)

    if client.offline:
        log.info("offline mode: serving the cached version, not watching the registry")
    else:
        threading.Thread(target=state.watch_forever, name="watch", daemon=True).start()
        if args.resync_interval > 0:
            threading.Thread(
                target=state.resync_forever, args=(args.resync_interval,), daemon=True
            ).start()

    httpd = ModelHTTPServer((args.host, args.port), state)
    host, port = httpd.server_address[:2]
    log.info("serving on http://%s:%d", host, port)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        log.info("shutting down")
    finally:
        httpd.server_close()
        state.stop()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
