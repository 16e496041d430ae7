"""`picbeam serve` under load: 8 clients posting one file per request, against `picbeam upload -j 8`.

    python tests/bench/serve.py            # 2,000 files of 32 KB, 5 interleaved pairs (about two minutes)
    python tests/bench/serve.py --quick    # a smoke run
    python tests/bench/serve.py --json     # figures for machines

Both runs send the same files to the same fast loopback host (tests/bench/server.py) with default settings
(strip on, ledger on; each run its own ledger, so nothing is reused). While the clients upload, a process
of its own (as an editor is) asks for /heartbeat every 20 ms: its latency, against the same while the
server is idle, says whether uploads hold the server's event loop up. The same asked from the clients'
own event loop (the earlier figure) also counts the time that loop, busy posting, takes to get to it.
Figures are reported, never asserted.

    python tests/bench/serve.py --heartbeat URL   # (internal) the heartbeat process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PYTHON, picbeam_command  # noqa: E402

FULL = {"files": 2000, "size": 32 * 1024, "clients": 8, "repeats": 5}
QUICK = {"files": 40, "size": 4 * 1024, "clients": 8, "repeats": 1}


def make_pngs(folder: Path, count: int, size: int) -> Path:
    """Well-formed PNGs of about ``size`` bytes (random pixel data), so the default path strips them."""
    folder.mkdir(parents=True, exist_ok=True)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
    for i in range(count):
        pixels = zlib.compress(os.urandom(max(0, size - 60)), 0)
        (folder / f"f{i:06d}.png").write_bytes(
            b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
        )
    return folder


class ServeBench:
    def __init__(self, scratch: Path, sizes: dict[str, Any]) -> None:
        self.scratch, self.sizes = scratch, sizes
        self.host = subprocess.Popen([PYTHON, str(HERE / "server.py")], stdout=subprocess.PIPE, text=True)
        assert self.host.stdout is not None
        endpoint = f"http://127.0.0.1:{self.host.stdout.readline().strip()}/upload"
        hosts = scratch / "hosts.d"
        hosts.mkdir()
        (hosts / "bench.toml").write_text(f'endpoint = "{endpoint}"\nurl_path = "data.url"\n')
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**environ, "PICBEAM_HOSTS_DIR": str(hosts), "XDG_CONFIG_HOME": str(scratch / "config"),
                    "XDG_DATA_HOME": str(scratch / "data")}  # fmt: skip
        self.files = sorted(make_pngs(scratch / "files", sizes["files"], sizes["size"]).iterdir())
        self.runs = 0

    def close(self) -> None:
        self.host.kill()
        self.host.wait()

    def ledger(self) -> str:
        self.runs += 1
        return str(self.scratch / f"ledger-{self.runs}.sqlite")

    def cli(self) -> dict[str, Any]:
        """Seconds for `picbeam upload FOLDER -j CLIENTS` (start-up included, as a user runs it), and CPU."""
        command = [*picbeam_command(), "upload", str(self.scratch / "files"), "--host", "bench",
                   "-j", str(self.sizes["clients"]), "--ledger", self.ledger()]  # fmt: skip
        cpu = children_cpu()
        started = time.perf_counter()
        done = subprocess.run(command, env=self.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or len(done.stdout.splitlines()) != len(self.files):
            raise SystemExit(f"picbeam upload failed: {done.stderr[-2000:]}")
        return {"seconds": elapsed, "cpu": children_cpu() - cpu}

    def serve(self) -> dict[str, Any]:
        """Seconds for CLIENTS clients to post every file, one per request, and the heartbeat latencies."""
        command = [*picbeam_command(), "serve", "--port", "0", "--host", "bench", "-j", str(self.sizes["clients"]),
                   "--ledger", self.ledger()]  # fmt: skip
        # The request log goes to a file: a pipe read by this busy process would slow the server's writes.
        log = self.scratch / f"serve-{self.runs}.log"
        with open(log, "w") as handle:
            server = subprocess.Popen(command, env=self.env, stderr=handle, text=True)
        port = 0
        for _ in range(600):
            if match := re.search(r"http://127\.0\.0\.1:(\d+)/upload", log.read_text()):
                port = int(match.group(1))
                break
            if server.poll() is not None:
                break
            time.sleep(0.05)
        if not port:
            raise SystemExit(f"picbeam serve did not start: {log.read_text()[-2000:]}")
        beating = subprocess.Popen([PYTHON, __file__, "--heartbeat", f"http://127.0.0.1:{port}/heartbeat"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert beating.stdin is not None and beating.stdout is not None
        idle = json.loads(beating.stdout.readline())  # measured before any upload
        cpu = children_cpu()
        try:
            figures = asyncio.run(self._clients(port))
        finally:
            beating.stdin.close()  # the uploads are over
            busy = json.loads(beating.stdout.readline() or "[]")
            _, _, usage = os.wait4(beating.pid, 0)  # its CPU is not the server's
            beating.returncode = 0
            server.send_signal(signal.SIGINT)
            server.wait(30)
        cpu = children_cpu() - cpu - usage.ru_utime - usage.ru_stime
        # the server's start-up included, as for the command
        return {**figures, "heartbeat_idle_ms": summary(idle), "heartbeat_busy_ms": summary(busy), "cpu": cpu}

    async def _clients(self, port: int) -> dict[str, Any]:
        import aiohttp

        url = f"http://127.0.0.1:{port}"
        queue = list(reversed(self.files))
        uploading = True

        async def heartbeats(session: aiohttp.ClientSession, more: Callable[[int], bool]) -> list[float]:
            latencies: list[float] = []
            while more(len(latencies)):
                started = time.perf_counter()
                async with session.get(f"{url}/heartbeat") as answer:
                    await answer.read()
                latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.02)
            return latencies

        async def client(session: aiohttp.ClientSession) -> None:
            while queue:
                path = queue.pop()
                form = aiohttp.FormData()
                form.add_field("files", path.read_bytes(), filename=path.name, content_type="image/png")
                async with session.post(f"{url}/upload", data=form) as answer:
                    body = await answer.json()
                    if answer.status != 200:
                        raise SystemExit(f"{path.name}: HTTP {answer.status}: {body}")

        async with aiohttp.ClientSession() as session:
            idle = await heartbeats(session, lambda samples: samples < 50)
            beating = asyncio.create_task(heartbeats(session, lambda samples: uploading))
            started = time.perf_counter()
            await asyncio.gather(*(client(session) for _ in range(self.sizes["clients"])))
            elapsed = time.perf_counter() - started
            uploading = False
            busy = await beating
        return {"seconds": elapsed, "heartbeat_in_clients_loop_idle_ms": summary(idle),
                "heartbeat_in_clients_loop_busy_ms": summary(busy)}  # fmt: skip


def heartbeat_process(url: str) -> None:
    """Ask ``url`` every 20 ms on one kept-alive connection: 50 latencies (ms) while idle, printed as a JSON
    line; then more until standard input closes, printed the same way."""
    import http.client
    import urllib.parse

    target = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)

    def one() -> float:
        started = time.perf_counter()
        connection.request("GET", target.path)
        connection.getresponse().read()
        return (time.perf_counter() - started) * 1000

    idle = []
    for _ in range(50):
        idle.append(one())
        time.sleep(0.02)
    print(json.dumps(idle), flush=True)
    busy = []
    while not select.select([sys.stdin], [], [], 0.02)[0]:
        busy.append(one())
    print(json.dumps(busy), flush=True)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(len(ordered) * 0.95) - 1 if len(ordered) > 1 else 0], 2),
        "max": round(ordered[-1], 2),
        "samples": len(ordered),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--heartbeat", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.heartbeat:
        heartbeat_process(args.heartbeat)
        return {}
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="picbeam-serve-bench-") as scratch:
        bench = ServeBench(Path(scratch), sizes)
        # Interleaved, so that a change in the machine's load hits both sides: the ratio is the median of
        # each pair's (the machine is shared, and its load moves by more than the difference measured).
        pairs = []
        try:
            for _ in range(sizes["repeats"]):
                pairs.append((bench.cli(), bench.serve()))
        finally:
            bench.close()
    files = sizes["files"]
    cli = min((pair[0] for pair in pairs), key=lambda run: run["seconds"])
    served = min((pair[1] for pair in pairs), key=lambda run: run["seconds"])
    report = {
        "files": files,
        "size": sizes["size"],
        "clients": sizes["clients"],
        "cli_files_per_s": round(files / cli["seconds"], 1),
        "serve_files_per_s": round(files / served["seconds"], 1),
        "ratio": round(statistics.median(c["seconds"] / s["seconds"] for c, s in pairs), 2),
        "ratios": [round(c["seconds"] / s["seconds"], 2) for c, s in pairs],
        "cli_cpu_ms_per_file": round(cli["cpu"] * 1000 / files, 2),
        "serve_cpu_ms_per_file": round(served["cpu"] * 1000 / files, 2),
        "heartbeat_idle_ms": served["heartbeat_idle_ms"],
        "heartbeat_busy_ms": served["heartbeat_busy_ms"],
        "heartbeat_in_clients_loop_idle_ms": served["heartbeat_in_clients_loop_idle_ms"],
        "heartbeat_in_clients_loop_busy_ms": served["heartbeat_in_clients_loop_busy_ms"],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{files} files of {sizes['size'] // 1024} KB, {sizes['clients']} clients, {sizes['repeats']} pairs")
        print(f"picbeam upload -j {sizes['clients']}: {report['cli_files_per_s']} files/s, "
              f"{report['cli_cpu_ms_per_file']} ms CPU per file")  # fmt: skip
        print(f"picbeam serve, one file per request: {report['serve_files_per_s']} files/s, "
              f"{report['serve_cpu_ms_per_file']} ms CPU per file (server only)")  # fmt: skip
        print(f"serve / upload throughput: {report['ratio']}x (median of the pairs {report['ratios']})")
        for key, name in (("heartbeat", "heartbeat"), ("heartbeat_in_clients_loop", "heartbeat (clients' loop)")):
            for state in ("idle", "busy"):
                beat = report[f"{key}_{state}_ms"]
                print(f"{name} while {state}: median {beat['median']} ms, p95 {beat['p95']} ms, max {beat['max']} ms")
    return report


if __name__ == "__main__":
    main()
