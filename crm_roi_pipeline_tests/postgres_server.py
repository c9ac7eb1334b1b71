"""A throwaway PostgreSQL server for the tests: `initdb` in a new folder, `pg_ctl start` on a free local port, a
superuser with a password (so the URL carries one, as a user's does), `pg_ctl stop` and the folder removed.

Only the standard library, so that .ci/run starts the server with the system Python before the venv exists:

    python3 crm_roi_pipeline_tests/postgres_server.py start DIR   # prints the server's postgresql:// URL
    python3 crm_roi_pipeline_tests/postgres_server.py stop DIR

PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the system user `postgres` (runuser), which
owns the folder. The binaries: $CRM_ROI_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else `initdb` on PATH.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

USER = "crm_roi"
DATABASE = "postgres"


class NoServer(Exception):
    """No PostgreSQL server could be started here (the message says why)."""


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl, or None."""
    if os.environ.get("CRM_ROI_PG_BIN"):
        return Path(os.environ["CRM_ROI_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        raise NoServer("running as root without `runuser`: PostgreSQL cannot be started as root")
    return [runuser, "-u", "postgres", "--", *argv]


def _run(argv: list[str], what: str, timeout: float = 120) -> None:
    try:
        done = subprocess.run(_as_server_user(argv), check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NoServer(f"{what} did not finish in {timeout:.0f} s") from None
    if done.returncode != 0:
        raise NoServer(f"{what} failed: {(done.stderr or done.stdout).strip()[-1500:]}")


class PostgresServer:
    """One server in `root` (created when missing): `start()` returns its URL, `stop()` stops it and removes `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.url_file = self.root / "url"
        self.bin = pg_bin()

    @property
    def url(self) -> str:
        return self.url_file.read_text().strip()

    def start(self) -> str:
        if self.bin is None or not (self.bin / "initdb").exists():
            raise NoServer("no PostgreSQL binaries (initdb, pg_ctl): install postgresql-15 "
                           "(apt-get install postgresql-15), set CRM_ROI_PG_BIN, or give a server's URL in "
                           "CRM_ROI_TEST_PG_URL")
        self.root.mkdir(parents=True, exist_ok=True)
        password = secrets.token_hex(12)
        pwfile = self.root / "pwfile"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            try:
                server_user = pwd.getpwnam("postgres")
            except KeyError:
                raise NoServer("running as root and there is no `postgres` user to run PostgreSQL as") from None
            os.chmod(self.root, 0o700)
            for path in (self.root, pwfile):
                os.chown(path, server_user.pw_uid, server_user.pw_gid)
        port = free_port()
        _run([str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
              "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], "initdb")
        pwfile.unlink()
        # The socket in the data folder (not /var/run/postgresql, which may not exist), TCP on 127.0.0.1 only;
        # no fsync: the data is thrown away.
        options = f"-p {port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
              "start"], "pg_ctl start")
        url = f"postgresql://{USER}:{password}@127.0.0.1:{port}/{DATABASE}"
        self.url_file.write_text(url + "\n")
        return url

    def stop(self, remove: bool = True) -> None:
        """Stop the server (fast shutdown: clients are disconnected); remove its folder unless `remove` is False."""
        if self.bin is not None and (self.data / "postmaster.pid").exists():
            try:
                _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"],
                     "pg_ctl stop")
            except NoServer as exc:
                print(f"postgres_server: {exc}", file=sys.stderr)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def new_root() -> Path:
    """A new folder for a server, outside pytest's tmp_path (whose parents the `postgres` user cannot enter)."""
    return Path(tempfile.mkdtemp(prefix="crm_roi_pg_"))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    server = PostgresServer(Path(argv[1]))
    if argv[0] == "stop":
        server.stop()
        return 0
    try:
        print(server.start())
    except NoServer as exc:
        print(f"postgres_server: {exc}", file=sys.stderr)
        server.stop()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
