"""What every vendor object-storage host's test checks, through the installed command: an upload
arrives byte-identical at the templated key with a signature the vendor's SDK accepts, the printed URL is
the vendor's (or the custom domain's), ``picbeam delete`` removes it with a signed request, and a wrong
secret is one line in the vendor's words with the secret nowhere."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from picbeam.testing import run_picbeam, write_host
from storage_servers import failure_line
from vendor_servers import VendorServer


def upload_then_delete(
    server: VendorServer, hosts_dir: Path, path: Path, fields: dict[str, Any], env: dict[str, str], key: str
) -> str:
    """Upload ``path`` to a host made of ``fields`` (its path template giving ``key``), then delete it;
    the URL printed."""
    write_host(hosts_dir, "vendor", **fields)
    before = server.checked
    done = run_picbeam("upload", path, "--host", "vendor", env=env)
    assert done.returncode == 0, done.stderr
    [url] = done.lines
    assert server.objects[key] == path.read_bytes()
    deleted = run_picbeam("delete", url, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert key not in server.objects
    assert server.checked == before + 2  # the upload and the delete, each signature checked by the SDK
    assert not [value for value in env.values() if value in done.stdout + done.stderr + deleted.stderr]
    return url


def wrong_secret_line(hosts_dir: Path, path: Path, fields: dict[str, Any], env: dict[str, str]) -> str:
    write_host(hosts_dir, "wrong", **fields)
    return failure_line(path, "wrong", tuple(env.values()), env, cli=True)


def year_month() -> str:
    return time.strftime("%Y/%m")
