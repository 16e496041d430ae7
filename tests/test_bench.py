"""A smoke run of the benchmark at tiny sizes, so it cannot rot. Figures are reported, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent / "bench" / "run.py"


def test_benchmark_quick_run_reports_every_figure():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    runs = report["throughput"]["runs"]
    assert {
        "raw aiohttp (floor)",
        "picbeam CLI (default: strip), ledger on",
        "picbeam CLI --keep-metadata, ledger on",
        "picbeam CLI, no ledger",
        "picbeam Python API, ledger on",
    } <= set(runs)
    assert all(run["files_per_s"] > 0 for run in runs.values())
    assert set(report["scaling"]["rows"]) == {"20", "40", "80"}
    assert set(report["memory"]["big_file_runs"]) == {
        "raw aiohttp, streamed",
        "picbeam (default: strip)",
        "picbeam --keep-metadata",
    }
    assert report["memory"]["big_file_peak_rss_mb"] > 0 and report["memory"]["tree_peak_rss_mb"] > 0
    assert report["startup"]["ratios"]["version_over_import_typer"] > 0
    editor = report["editor"]
    assert editor["runs"] == 2 and editor["ratios"]["wall"] > 0 and editor["ratios"]["cpu"] > 0
    assert editor["picbeam upload one file"]["cpu_ms"] > 0 and editor["one-shot aiohttp script"]["wall_ms"] > 0


def test_serve_benchmark_quick_run_reports_every_figure():
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "serve.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["cli_files_per_s"] > 0 and report["serve_files_per_s"] > 0 and report["ratio"] > 0
    assert report["cli_cpu_ms_per_file"] > 0 and report["serve_cpu_ms_per_file"] > 0
    assert report["heartbeat_busy_ms"]["samples"] > 0 and report["heartbeat_idle_ms"]["samples"] == 50
