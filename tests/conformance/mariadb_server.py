"""Private MariaDB servers for the DCDB conformance suite (stdlib + PyMySQL).

``MariaDBServer().start()`` runs ``mariadb-install-db`` into a temporary folder, then
``mariadbd`` on a free port bound to 127.0.0.1 (never the system server on 3306) with a
private socket, and creates the suite's users. ``stop()`` kills it (by its own pid) and
removes the folder. With CI=true a missing binary fails the suite; otherwise it skips.

Environment: MARIADBD_BIN (default /usr/sbin/mariadbd), MARIADB_INSTALL_DB_BIN (default
/usr/bin/mariadb-install-db), CONFORMANCE_KEEP=1 keeps the folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql
import pytest

ADMIN = ("sessiond", "sessiond-Pw1")  # PROCESS + CONNECTION ADMIN: sessiond's user
APP = ("app", "app-Pw1")  # application sessions (the ones that get killed)
REPL = ("repl", "repl-Pw1")  # declared protected by the suite

RUNNING: list["MariaDBServer"] = []

INSTANCE = "tdsqlshard-conf0001"  # account A: shards A (shard-aaaaaaaa) and B (shard-bbbbbbbb), C down
INSTANCE_B = "dcdbt-confbbbb"  # account B's


@atexit.register
def _stop_leftovers():  # e.g. after an interrupted run
    for server in list(RUNNING):
        try:
            server.stop()
        except Exception:
            pass


def _binary(env: str, default: str) -> Path | None:
    p = Path(os.environ.get(env) or default)
    if p.is_file() and os.access(p, os.X_OK):
        return p
    msg = f"{p} is missing: the DCDB suite needs MariaDB (apt-get install mariadb-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MariaDBServer:
    def __init__(self, max_connections: int = 200, event_scheduler: bool = False):
        self.max_connections = max_connections
        self.event_scheduler = event_scheduler
        self.tmp: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def socket_path(self) -> Path:
        assert self.tmp
        return self.tmp / "mariadb.sock"

    def start(self) -> "MariaDBServer":
        server = _binary("MARIADBD_BIN", "/usr/sbin/mariadbd")
        install = _binary("MARIADB_INSTALL_DB_BIN", "/usr/bin/mariadb-install-db")
        self.tmp = Path(tempfile.mkdtemp(prefix="mdb-conf-"))
        data = self.tmp / "data"
        # a private tmpdir: servers bootstrapped side by side must not share /tmp's temp tables
        tmpdir = self.tmp / "tmp"
        tmpdir.mkdir()
        out = subprocess.run(
            [str(install), "--no-defaults", f"--datadir={data}",
             f"--tmpdir={tmpdir}", "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root",
             "--innodb-log-file-size=4M"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
        )
        if out.returncode != 0:
            self.stop()
            pytest.fail(f"mariadb-install-db failed: {out.stdout}\n{out.stderr}")
        log = self.tmp / "error.log"
        last = ""
        for _ in range(3):  # a free port may be taken before mariadbd binds it
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [str(server), "--no-defaults", f"--datadir={data}", f"--socket={self.socket_path}",
                 f"--tmpdir={tmpdir}",
                 f"--port={self.port}", "--bind-address=127.0.0.1",
                 f"--max-connections={self.max_connections}", f"--pid-file={self.tmp / 'mariadb.pid'}",
                 f"--log-error={log}", "--user=root", "--skip-name-resolve", "--skip-log-bin",
                 "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M",
                 "--performance-schema=OFF",
                 f"--event-scheduler={'ON' if self.event_scheduler else 'OFF'}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            RUNNING.append(self)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    conn = self.root()
                except pymysql.err.OperationalError:
                    time.sleep(0.05)
                    continue
                with conn:
                    self._create_users(conn)
                return self
            last = log.read_text(errors="replace") if log.exists() else "(no log)"
            self._kill()
        self.stop()
        pytest.fail(f"mariadbd did not start: {last[-3000:]}")
        return self

    def _create_users(self, conn):
        with conn.cursor() as c:
            for user, password in (ADMIN, APP, REPL):
                c.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            c.execute(f"GRANT PROCESS, CONNECTION ADMIN ON *.* TO '{ADMIN[0]}'@'%'")

    def root(self):
        """root over the private socket (sees every thread)."""
        return pymysql.connect(unix_socket=str(self.socket_path), user="root", password="",
                               connect_timeout=5, autocommit=True)

    def client(self, user=APP):
        """A client session over TCP; returns (thread id, connection)."""
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user=user[0], password=user[1],
                               connect_timeout=5, read_timeout=5, write_timeout=5, autocommit=True)
        return conn.thread_id(), conn

    def clients(self, n: int, user=APP):
        return [self.client(user) for _ in range(n)]

    def threads(self) -> dict[int, tuple[str, str]]:
        """id -> (user, command) of every thread but the checking connection."""
        with self.root() as conn, conn.cursor() as c:
            c.execute("SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST "
                      "WHERE ID <> CONNECTION_ID()")
            return {int(i): (u or "", cmd or "") for i, u, cmd in c.fetchall()}

    def shard_toml(self, shard_id: str, serial: str, user=ADMIN) -> str:
        return (f'[[dcdb.instances.shards]]\nshard_instance_id = "{shard_id}"\n'
                f'shard_serial_id = "{serial}"\nmaster = {{ host = "127.0.0.1", port = {self.port}, '
                f'user = "{user[0]}", password = "{user[1]}" }}\n')

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self in RUNNING:
            RUNNING.remove(self)

    def stop(self):
        self._kill()
        self.proc = None
        if self.tmp and os.environ.get("CONFORMANCE_KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)


def client_dead(conn) -> bool:
    """Did the server end this client session? (A query on it fails.)"""
    try:
        with conn.cursor() as c:
            c.execute("SELECT 1")
        return False
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
        return True


def closed_port() -> int:
    """A port nothing listens on (a shard that is down)."""
    return _free_port()


def dcdb_toml(a: MariaDBServer, b: MariaDBServer, account_a: str, account_b: str) -> str:
    """The [dcdb] section: account A's instance with shards on `a` and `b` and a third shard
    that is down; account B's instance on `a`."""
    down = closed_port()
    return (
        "[dcdb]\nconnect_timeout_ms = 1000\nquery_timeout_ms = 2000\nkill_wait_ms = 3000\n\n"
        f'[[dcdb.instances]]\ninstance_id = "{INSTANCE}"\nname = "conformance"\n'
        f'account_id = "{account_a}"\nprotected_users = ["{REPL[0]}"]\nvip = "10.0.0.10"\nvport = 3306\n\n'
        + a.shard_toml("shard-aaaaaaaa", "set_1700000000_1")
        + b.shard_toml("shard-bbbbbbbb", "set_1700000000_2")
        + '[[dcdb.instances.shards]]\nshard_instance_id = "shard-cccccccc"\n'
        'shard_serial_id = "set_1700000000_3"\n'
        f'master = {{ host = "127.0.0.1", port = {down}, user = "{ADMIN[0]}", password = "{ADMIN[1]}" }}\n'
        '[[dcdb.instances.shards.replicas]]\nnode_id = "4ddc0ea18433"\nhost = "127.0.0.1"\n'
        f'port = {down}\nuser = "{ADMIN[0]}"\npassword = "{ADMIN[1]}"\n\n'
        f'[[dcdb.instances]]\ninstance_id = "{INSTANCE_B}"\nname = "other-account"\n'
        f'account_id = "{account_b}"\n\n'
        + a.shard_toml("shard-otherbbb", "set_1700000000_1")
    )
