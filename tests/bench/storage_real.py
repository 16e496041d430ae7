"""The storage hosts against real server software: what works and how fast, per host, server and login.

    python tests/bench/storage_real.py             # every server installed here
    python tests/bench/storage_real.py --files 40  # a quicker run

Each server is its own instance on 127.0.0.1 (tests/real_servers.py: OpenSSH sshd, Apache mod_dav,
nginx dav, lighttpd mod_webdav, rclone serve webdav and serve s3), started and stopped here. Per row: one file into new
nested folders, a big file, a delete, and a batch of small files (``-j 8``) through the ``picbeam``
command, timed from the outside. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from picbeam.samples import png
from picbeam.testing import write_host
from real_servers import Missing, apache, lighttpd, nginx, rclone_s3, rclone_webdav, sshd

BIG = 64 * 1024 * 1024


def sftp_rows(server: Any) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    base = {"extends": "sftp", "host": "127.0.0.1", "port": server.port, "username": server.username}
    base["known_hosts"] = str(server.known_hosts)
    yield "key", {**base, "key_file": str(server.plain_key_file)}, {}
    yield (
        "encrypted key",
        {**base, "key_file": str(server.key_file), "passphrase": "${PASS}"},
        {"PASS": server.passphrase},
    )
    yield "password", {**base, "password": "${PASS}"}, {"PASS": server.password}


def dav_rows(server: Any) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    fields = {"extends": "webdav", "endpoint": server.url, "username": server.username, "password": "${PASS}"}
    yield server.auth, fields, {"PASS": server.password}


def s3_rows(server: Any) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    fields = {"extends": "s3", "endpoint": server.endpoint, "bucket": server.bucket}
    yield "SigV4 (path-style, automatic)", fields, server.env()


SERVERS: list[tuple[str, str, Callable[[], Any], Callable[[Any], Iterator[Any]]]] = [
    ("sftp", "OpenSSH sshd", sshd, sftp_rows),
    ("webdav", "Apache mod_dav, public read", lambda: apache("digest", True), dav_rows),
    ("webdav", "Apache mod_dav", lambda: apache("basic", False), dav_rows),
    ("webdav", "nginx dav + dav_ext", nginx, dav_rows),
    ("webdav", "lighttpd mod_webdav", lambda: lighttpd("basic"), dav_rows),
    ("webdav", "lighttpd mod_webdav", lambda: lighttpd("digest"), dav_rows),
    ("webdav", "rclone serve webdav", rclone_webdav, dav_rows),
    ("s3", "rclone serve s3", rclone_s3, s3_rows),
]


def picbeam(env: dict[str, str], *args: str) -> tuple[int, float, str]:
    """Exit status, seconds (start-up included, as a user waits) and stderr of one command."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "picbeam", *args], capture_output=True, text=True, env={**os.environ, **env}
    )
    return done.returncode, time.monotonic() - started, done.stderr


def measure(work: Path, name: str, fields: dict[str, Any], env: dict[str, str], files: int) -> dict[str, str]:
    hosts = work / "hosts.d"
    home = {"XDG_CONFIG_HOME": str(work / "config"), "XDG_DATA_HOME": str(work / "data")}
    env = {**env, **home, "PICBEAM_HOSTS_DIR": str(hosts)}
    write_host(hosts, name, **fields, path=f"{name}/a/b/c/{{name}}{{ext}}")
    write_host(hosts, f"{name}-batch", **fields, path=f"{name}-batch/{{year}}/{{name}}{{ext}}")
    one = work / "one.png"
    one.write_bytes(png(8, 8, seed=1))
    row: dict[str, str] = {}
    code, _, err = picbeam(env, "upload", str(one), "--host", name)
    row["upload + nested folders"] = "ok" if code == 0 else f"FAIL {err.strip()[-80:]}"
    big = work / "big.bin"
    if not big.exists():
        big.write_bytes(os.urandom(BIG))
    code, seconds, err = picbeam(env, "upload", str(big), "--host", name)
    row[f"big file ({BIG // 2**20} MiB)"] = f"{seconds:.2f} s" if code == 0 else f"FAIL {err.strip()[-80:]}"
    code, _, err = picbeam(env, "delete", "--last", "1", "--host", name)
    row["delete"] = "ok" if code == 0 else f"FAIL {err.strip()[-80:]}"
    batch = work / f"batch-{name}"
    batch.mkdir()
    for i in range(files):
        (batch / f"img{i:04d}.png").write_bytes(png(4, 4, seed=1000 + i))
    code, seconds, err = picbeam(env, "upload", str(batch), "--host", f"{name}-batch", "-j", "8", "--no-ledger")
    row[f"{files} files -j 8"] = f"{seconds:.2f} s" if code == 0 else f"FAIL {err.strip()[-80:]}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    options = parser.parse_args()
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="picbeam-bench-") as scratch:
        work = Path(scratch)
        for number, (host, server_name, launcher, make_rows) in enumerate(SERVERS):
            try:
                with contextlib.ExitStack() as stack:
                    server = stack.enter_context(launcher())
                    for login, (auth, fields, env) in enumerate(make_rows(server)):
                        name = f"h{number}-{login}"
                        figures = measure(work, name, fields, env, options.files)
                        rows.append({"host": host, "server": server_name, "auth": auth, **figures})
                        print(" | ".join(rows[-1].values()), file=sys.stderr, flush=True)
            except Missing as exc:
                rows.append({"host": host, "server": server_name, "auth": f"skipped: {exc}"})
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row.get(column, "") for column in columns) + " |")


if __name__ == "__main__":
    main()
