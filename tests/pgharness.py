"""A real PostgreSQL for the replica tests: scripts/postgres-up.sh makes sure the server runs;
each test gets a database of its own, dropped afterwards (sessions of killed replicas included).
No server is a failure, not a skip."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.service_harness import ROOT

ADMIN_URL = os.environ.get(
    "ALERT_ROUTER_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)

_checked = False


def ensure_server() -> None:
    global _checked
    if _checked:
        return
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres-up.sh")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"PostgreSQL is needed for this test: {result.stderr or result.stdout}"
    _checked = True


def url_of(database: str, host: str = "127.0.0.1", port: int = 5432) -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    user, password = info.get("user", "postgres"), info.get("password")
    auth = f"{user}:{password}" if password else str(user)
    return f"postgresql://{auth}@{host}:{port}/{database}"


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A new empty database; yields its name."""
    ensure_server()
    name = f"alert_router_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def terminate_sessions(database: str) -> int:
    """pg_terminate_backend of every session on `database` (what a server restart does to them)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def query(database: str, sql: str) -> list[tuple]:
    with psycopg.connect(url_of(database), autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


class Proxy:
    """A TCP proxy in front of PostgreSQL, on its own thread and event loop (the test's loop may
    block): `cut()` aborts every connection through it and refuses new ones (a network
    partition as the replica sees it), `restore()` lets them through again."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.port = 0
        self.open = True
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-proxy", daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def _cut(self) -> None:
        self.open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self._cut)

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        async def shut() -> None:
            self._cut()
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _bindir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    assert versions, "PostgreSQL is needed for this test: run scripts/install-externals.sh"
    return versions[-1]


class PrivateServer:
    """A PostgreSQL server of the test's own (initdb in a temporary directory, a free port,
    trust on 127.0.0.1), so that it can be crashed and restarted without disturbing anything
    else on the machine. Run as the `postgres` user when the tests run as root (initdb refuses
    root)."""

    def __init__(self) -> None:
        ensure_server()  # the same binaries; also fails loudly when they are missing
        # Not under pytest's tmp_path: the `postgres` user could not reach into it.
        self.dir = Path(tempfile.mkdtemp(prefix="alert-router-pg-"))
        self.port = _free_port()
        self.bin = _bindir()
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run(f"{self.bin}/initdb -D {self.dir}/data -A trust -U postgres --no-sync")
        self.start()

    def _run(self, command: str) -> None:
        argv = ["su", "postgres", "-c", command] if os.getuid() == 0 else ["bash", "-c", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{command}: {result.stderr or result.stdout}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(f"{self.bin}/pg_ctl -D {self.dir}/data -o '{options}' -l {self.dir}/log -w start")

    def crash(self) -> None:
        """Stop as a crash does (`-m immediate`: no shutdown checkpoint, recovery at the next start)."""
        self._run(f"{self.bin}/pg_ctl -D {self.dir}/data -m immediate -w stop")

    def close(self) -> None:
        with contextlib.suppress(AssertionError):  # already stopped
            self._run(f"{self.bin}/pg_ctl -D {self.dir}/data -m immediate -w stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
