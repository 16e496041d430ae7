"""picbeam's benchmark: throughput against the raw-aiohttp floor, scaling, memory and start-up.

    python tests/bench/run.py            # the full run (a few minutes; about 1.5 GB of scratch disk)
    python tests/bench/run.py --quick    # tiny sizes: a smoke run
    python tests/bench/run.py --json     # figures for machines

It starts its own fast loopback host in a separate process and generates its own files.
Nothing here is asserted: machines are noisy, so figures are reported, not tested.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
DEFAULT_ROW = "picbeam CLI (default: strip), ledger on"
KEEP_ROW = "picbeam CLI --keep-metadata, ledger on"
EDITOR_RAW = "one-shot aiohttp script"
EDITOR_ROW = "picbeam upload one file"
# The editor path's floor: a one-shot script that imports aiohttp and posts one file (`python -c`).
ONE_SHOT = """
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as session:
        form = aiohttp.FormData()
        form.add_field("file", open(sys.argv[2], "rb"), filename="one.png", content_type="image/png")
        async with session.post(sys.argv[1], data=form) as response:
            print((await response.json())["data"]["url"])
asyncio.run(main())
"""
PARTS = ("throughput", "scaling", "memory", "startup", "editor")

FULL = {
    "files": 2000,
    "size": 32 * 1024,
    "jobs": 16,
    "scaling": (1000, 4000, 16000),
    "big": 1024**3,
    "tree": 50_000,
    "startup_runs": 10,
    "editor_runs": 21,
    "repeats": 5,
    "warm": True,
}
QUICK = {
    "files": 40,
    "size": 4 * 1024,
    "jobs": 4,
    "scaling": (20, 40, 80),
    "big": 4 * 1024**2,
    "tree": 200,
    "startup_runs": 1,
    "editor_runs": 2,
    "repeats": 1,
    # A smoke run checks that every measurement runs and reports, not its figures: no warming runs.
    "warm": False,
}


def picbeam_command() -> list[str]:
    script = Path(PYTHON).parent / "picbeam"
    return [str(script)] if script.exists() else [PYTHON, "-m", "picbeam"]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def make_png(size: int, text: bool) -> bytes:
    """A valid PNG of about ``size`` bytes (noise pixels, which do not compress); with ``text``, it carries
    a tEXt and a tIME chunk that the default settings strip."""
    width = 128
    rows = max(1, size // (width * 3 + 1))
    pixels = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(rows))
    header = (width.to_bytes(4, "big") + rows.to_bytes(4, "big")) + bytes([8, 2, 0, 0, 0])
    metadata = png_chunk(b"tEXt", b"Comment\x00taken at 12 Rue Example")
    metadata += png_chunk(b"tIME", b"\x07\xea\x0c\x01\x08\x00\x00")
    return (
        PNG_HEADER
        + png_chunk(b"IHDR", header)
        + (metadata if text else b"")
        + png_chunk(b"IDAT", zlib.compress(pixels, 1))
        + png_chunk(b"IEND", b"")
    )


def make_files(folder: Path, count: int, size: int) -> Path:
    """``count`` PNGs of about ``size`` bytes; every other one has metadata to strip, the others need no change."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"f{i:06d}.png").write_bytes(make_png(size, text=i % 2 == 0))
    return folder


def make_big_png(path: Path, size: int) -> Path:
    """A PNG of ``size`` bytes with a tEXt chunk to strip and one IDAT chunk that is a sparse hole: the disk
    holds almost nothing, reads still stream it all. (Its CRC is not computed: nothing here decodes it.)"""
    head = PNG_HEADER + png_chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
    head += png_chunk(b"tEXt", b"Comment\x00taken at 12 Rue Example")
    tail = png_chunk(b"IEND", b"")
    data = size - len(head) - 12 - len(tail)
    with open(path, "wb") as handle:
        handle.write(head + data.to_bytes(4, "big") + b"IDAT")
        handle.seek(data, os.SEEK_CUR)
        handle.write(b"\x00" * 4 + tail)
    return path


class Bench:
    def __init__(self, scratch: Path, sizes: dict[str, Any]) -> None:
        self.scratch, self.sizes = scratch, sizes
        self.server = subprocess.Popen([PYTHON, str(HERE / "server.py")], stdout=subprocess.PIPE, text=True)
        assert self.server.stdout is not None
        self.url = f"http://127.0.0.1:{self.server.stdout.readline().strip()}/upload"
        hosts = scratch / "hosts.d"
        hosts.mkdir()
        (hosts / "bench.toml").write_text(f'endpoint = "{self.url}"\nurl_path = "data.url"\n')
        # Bytecode is written (as an installed package has it): with PYTHONDONTWRITEBYTECODE set, every
        # start-up of an editable checkout would compile picbeam's sources again and measure that instead.
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {
            **environ,
            "PICBEAM_HOSTS_DIR": str(hosts),
            "XDG_CONFIG_HOME": str(scratch / "config"),
            "XDG_DATA_HOME": str(scratch / "data"),
            "XDG_CACHE_HOME": str(scratch / "cache"),
        }
        self.ledgers = 0

    def close(self) -> None:
        self.server.kill()
        self.server.wait()

    def fresh_ledger(self) -> str:
        self.ledgers += 1
        return str(self.scratch / f"ledger-{self.ledgers}.sqlite3")

    def timed(self, command: Sequence[str]) -> float:
        return self.measured(command)[0]

    def measured(self, command: Sequence[str]) -> tuple[float, float]:
        """Wall seconds and CPU seconds (user + system, with its own children) of one command."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(command)}\n{done.stderr[-2000:]}")
        return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    def best_of(self, command: Callable[[], list[str]]) -> dict[str, Any]:
        """Best of the configured repeats (after one warming run), with the spread: the machine is noisy."""
        return self.interleaved({"run": command})["run"]

    def interleaved(self, commands: dict[str, Callable[[], list[str]]]) -> dict[str, dict[str, Any]]:
        """Like :meth:`best_of` for several commands, run in turns (each round runs every command once):
        the machine's load drifts over minutes, and a drift must hit every row, not only the last ones."""
        if self.sizes["warm"]:
            for command in commands.values():
                self.timed(command())  # warm the page cache and the server once
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(self.sizes["repeats"]):
            for name, command in commands.items():
                runs[name].append(self.measured(command()))
        return {
            name: {
                "seconds": min(taken)[0],
                "cpu_seconds": min(taken)[1],
                "median_seconds": statistics.median(wall for wall, _ in taken),
                "spread_seconds": [min(r[0] for r in taken), max(r[0] for r in taken)],
            }
            for name, taken in runs.items()
        }

    def peak_rss_mb(self, command: Sequence[str]) -> float:
        """Peak resident memory of one command, measured by a wrapper whose only child it is."""
        probe = (
            "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        out = subprocess.run([PYTHON, "-c", probe, *command], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(command)}\n{out.stderr[-2000:]}")
        return int(out.stdout.strip()) / 1024

    def cli_upload(
        self,
        *paths: Path,
        ledger: bool = True,
        jobs: int | None = None,
        recursive: bool = False,
        keep_metadata: bool = False,
    ) -> list[str]:
        command = [
            *picbeam_command(),
            "upload",
            *map(str, paths),
            "--host",
            "bench",
            "-j",
            str(jobs or self.sizes["jobs"]),
        ]
        # The default settings strip metadata; --keep-metadata measures the transport alone.
        command += ["--keep-metadata"] if keep_metadata else []
        command += ["--ledger", self.fresh_ledger()] if ledger else ["--no-ledger"]
        return command + (["-r"] if recursive else [])

    # -- the measurements -------------------------------------------------------------------------
    def throughput(self) -> dict[str, Any]:
        files, jobs = self.sizes["files"], self.sizes["jobs"]
        folder = make_files(self.scratch / "throughput", files, self.sizes["size"])
        api = (
            "import sys, picbeam; r = picbeam.upload([sys.argv[1]], host='bench', jobs=int(sys.argv[2]), "
            "ledger=sys.argv[3]); assert all(x.ok for x in r), [x.error for x in r if x.error][:3]"
        )
        # Each entry makes a fresh command: picbeam runs get a new, empty ledger every time, so every
        # timed run really uploads (a reused ledger would answer from its records).
        runs: dict[str, Callable[[], list[str]]] = {
            "raw aiohttp (floor)": lambda: [PYTHON, str(HERE / "raw_aiohttp.py"), self.url, str(jobs), str(folder)],
            DEFAULT_ROW: lambda: self.cli_upload(folder),
            KEEP_ROW: lambda: self.cli_upload(folder, keep_metadata=True),
            "picbeam CLI, no ledger": lambda: self.cli_upload(folder, ledger=False),
            "picbeam Python API, ledger on": lambda: [PYTHON, "-c", api, str(folder), str(jobs), self.fresh_ledger()],
        }
        curl = shutil.which("curl")
        if curl:
            config = self.scratch / "curl.cfg"
            config.write_text(
                "next\n".join(
                    f'url = "{self.url}"\nform = "file=@{p}"\noutput = "/dev/null"\n' for p in sorted(folder.iterdir())
                )
            )
            runs["curl --parallel"] = lambda: [curl, "-s", "--parallel", "--parallel-max", str(jobs), "-K", str(config)]
        results = self.interleaved(runs)
        floor = results["raw aiohttp (floor)"]["seconds"]
        for entry in results.values():
            entry["files_per_s"] = files / entry["seconds"]
            entry["ratio_to_floor"] = entry["seconds"] / floor
            entry["median_ratio_to_floor"] = entry["median_seconds"] / results["raw aiohttp (floor)"]["median_seconds"]
        return {
            "files": files,
            "bytes_each": self.sizes["size"],
            "jobs": jobs,
            "runs": results,
            "default_over_keep_metadata": results[DEFAULT_ROW]["seconds"] / results[KEEP_ROW]["seconds"],
        }

    def scaling(self) -> dict[str, Any]:
        rows = {}
        for count in self.sizes["scaling"]:
            folder = make_files(self.scratch / f"scale-{count}", count, self.sizes["size"])
            seconds = self.timed(self.cli_upload(folder))
            rows[str(count)] = {"seconds": seconds, "ms_per_file": 1000 * seconds / count}
            shutil.rmtree(folder)
        first, last = (rows[str(c)]["ms_per_file"] for c in (self.sizes["scaling"][0], self.sizes["scaling"][-1]))
        return {"rows": rows, "last_over_first": last / first}

    def memory(self) -> dict[str, Any]:
        big = make_big_png(self.scratch / "big.png", self.sizes["big"])
        raw = [PYTHON, str(HERE / "raw_aiohttp.py"), self.url, "1", str(big)]
        big_runs = {
            "raw aiohttp, streamed": self.best_of(lambda: raw),
            "picbeam (default: strip)": self.best_of(lambda: self.cli_upload(big, jobs=1)),
            "picbeam --keep-metadata": self.best_of(lambda: self.cli_upload(big, jobs=1, keep_metadata=True)),
        }
        big_rss = self.peak_rss_mb(self.cli_upload(big, jobs=1))
        big.unlink()
        tree = self.scratch / "tree"
        per_folder = 1000
        for start in range(0, self.sizes["tree"], per_folder):
            make_files(tree / f"d{start // per_folder:03d}", min(per_folder, self.sizes["tree"] - start), 1024)
        tree_rss = self.peak_rss_mb(self.cli_upload(tree, recursive=True))
        shutil.rmtree(tree)
        floor = big_runs["raw aiohttp, streamed"]["seconds"]
        for entry in big_runs.values():
            entry["ratio_to_raw"] = entry["seconds"] / floor
        return {
            "big_file_bytes": self.sizes["big"],
            "big_file_runs": big_runs,
            "big_file_peak_rss_mb": big_rss,
            "tree_files": self.sizes["tree"],
            "tree_peak_rss_mb": tree_rss,
        }

    def startup(self) -> dict[str, Any]:
        commands = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "python -c 'import typer'": [PYTHON, "-c", "import typer"],
            "picbeam --version": [*picbeam_command(), "--version"],
            "picbeam upload --help": [*picbeam_command(), "upload", "--help"],
        }
        results: dict[str, Any] = {}
        for name, command in commands.items():
            if self.sizes["warm"]:
                self.timed(command)  # once to write bytecode and warm caches
            times = [self.timed(command) for _ in range(self.sizes["startup_runs"])]
            results[name] = {"median_ms": 1000 * statistics.median(times)}
        results["ratios"] = {
            "version_over_import_typer": results["picbeam --version"]["median_ms"]
            / results["python -c 'import typer'"]["median_ms"],
        }
        return results

    def editor(self) -> dict[str, Any]:
        """The editor path (Typora, PicGo-app): one process per paste. Alternating pairs of the one-shot
        script and `picbeam upload FILE` with default settings (strip on, the default ledger on), in one
        shared XDG home as an editor's pastes are: each run sends a file not sent before, so picbeam
        really uploads and its ledger grows. A warming pair first writes bytecode and the plugin index."""
        runs = self.sizes["editor_runs"]
        folder = make_files(self.scratch / "pastes", 2 * runs + 2, 32 * 1024)
        files = iter(sorted(folder.iterdir()))
        commands = {
            EDITOR_RAW: lambda: [PYTHON, "-c", ONE_SHOT, self.url, str(next(files))],
            EDITOR_ROW: lambda: [*picbeam_command(), "upload", str(next(files)), "--host", "bench"],
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for command in commands.values() if self.sizes["warm"] else ():
            self.measured(command())
        for _ in range(runs):
            for name, command in commands.items():
                samples[name].append(self.measured(command()))
        results: dict[str, Any] = {"runs": runs}
        for name, pairs in samples.items():
            walls, cpus = [1000 * wall for wall, _ in pairs], [1000 * cpu for _, cpu in pairs]
            results[name] = {
                "wall_ms": statistics.median(walls),
                "wall_spread_ms": [min(walls), max(walls)],
                "cpu_ms": statistics.median(cpus),
                "cpu_spread_ms": [min(cpus), max(cpus)],
            }
        results["ratios"] = {
            "wall": results[EDITOR_ROW]["wall_ms"] / results[EDITOR_RAW]["wall_ms"],
            "cpu": results[EDITOR_ROW]["cpu_ms"] / results[EDITOR_RAW]["cpu_ms"],
        }
        return results


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _row(name: str, row: dict[str, Any], ratio: str) -> str:
    low, high = row["spread_seconds"]
    return (
        f"  {name:<40}{row['seconds']:>8.2f} s ({low:.2f}-{high:.2f}){row['cpu_seconds']:>8.2f} s CPU"
        f"{row[ratio]:>8.2f}x"
    )


def print_table(report: dict[str, Any]) -> None:
    print(f"machine: {report['machine']}")
    t = report["throughput"]
    print(f"\nthroughput: {t['files']} files x {t['bytes_each'] // 1024} KB (half with metadata), {t['jobs']} jobs")
    print(f"  {'run':<40}{'best (spread)':>22}{'user+sys':>14}{'x floor':>9}{'(median)':>10}")
    for name, row in t["runs"].items():
        print(_row(name, row, "ratio_to_floor") + f"{row['median_ratio_to_floor']:>9.2f}x"
              f"{row['files_per_s']:>8.0f} files/s")  # fmt: skip
    print(f"  default over --keep-metadata: {t['default_over_keep_metadata']:.2f}x")
    s = report["scaling"]
    print("\nscaling (CLI, default settings, ledger on):")
    for count, row in s["rows"].items():
        print(f"  {count:>7} files {row['seconds']:>8.2f} s {row['ms_per_file']:>8.3f} ms/file")
    print(f"  time per file, largest over smallest: {s['last_over_first']:.2f}x")
    m = report["memory"]
    print(f"\none {m['big_file_bytes'] / 1024**2:.0f} MB PNG (with a tEXt chunk to strip):")
    for name, row in m["big_file_runs"].items():
        print(_row(name, row, "ratio_to_raw"))
    print(
        f"memory: the big file (default settings): peak RSS {m['big_file_peak_rss_mb']:.0f} MB;"
        f" {m['tree_files']} files: peak RSS {m['tree_peak_rss_mb']:.0f} MB"
    )
    u = report["startup"]
    print("\nstart-up (median):")
    for name, row in u.items():
        if name != "ratios":
            print(f"  {name:<30}{row['median_ms']:>8.0f} ms")
    print(f"  --version over `import typer`: {u['ratios']['version_over_import_typer']:.2f}x")
    e = report["editor"]
    print(f"\neditor path: one 32 KB file per process, {e['runs']} alternating pairs, shared XDG home (medians):")
    for name in (EDITOR_RAW, EDITOR_ROW):
        row = e[name]
        wall_low, wall_high = row["wall_spread_ms"]
        cpu_low, cpu_high = row["cpu_spread_ms"]
        print(
            f"  {name:<30}{row['wall_ms']:>6.0f} ms wall ({wall_low:.0f}-{wall_high:.0f})"
            f"{row['cpu_ms']:>6.0f} ms user+sys ({cpu_low:.0f}-{cpu_high:.0f})"
        )
    print(f"  picbeam over the script: {e['ratios']['wall']:.2f}x wall, {e['ratios']['cpu']:.2f}x CPU")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--only", choices=PARTS, action="append")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="picbeam-bench-") as scratch:
        bench = Bench(Path(scratch), sizes)
        try:
            for part in args.only or PARTS:
                report[part] = getattr(bench, part)()
        finally:
            bench.close()
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.only:
        print_table(report)
    else:
        print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
