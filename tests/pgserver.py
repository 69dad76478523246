"""A throw-away PostgreSQL server for tests: initdb + pg_ctl on 127.0.0.1, a random port.

``start()`` returns None with a reason when no server can be started here (no initdb on the
PATH, or running as root without a ``postgres`` user to run it as), so tests can skip with
that reason. The caller stops the server with ``stop()``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PgServer:
    root: Path
    port: int
    prefix: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    async def create_database(self, name: str) -> str:
        """A new, empty database on this server; its URL."""
        import asyncpg  # only where PostgreSQL runs: the optional extra provides it

        conn = await asyncpg.connect(f"{self.url}/postgres")
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        return f"{self.url}/{name}"

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, "pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start() -> PgServer | str:
    """A running server, or the reason there is none."""
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        return "initdb/pg_ctl not found on PATH: PostgreSQL tests need a local server"
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="newsbot-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = root / "data"
    commands = [
        [
            *prefix,
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        [
            *prefix,
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
    ]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            return f"{command[len(prefix)]} failed: {result.stderr.strip()[-300:]}"
    return PgServer(root, port, prefix)
