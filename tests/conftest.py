from __future__ import annotations

import os
from pathlib import Path

import pytest
from picbeam.samples import png

pytest_plugins = ["picbeam.testing", "storage_servers", "vendor_servers"]

DATA = Path(__file__).parent / "data"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` (the default options): one worker more than there are cores. A good part of the suite waits
    (hosts that answer late, timeouts, Retry-After, servers starting), and the extra worker fills that time.
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


@pytest.fixture(autouse=True)
def home(picbeam_home: Path) -> Path:
    """Every test runs with its own config, data and ledger folders."""
    return picbeam_home


@pytest.fixture
def fast_retries(home: Path) -> None:
    """Back off for milliseconds, not seconds: the suite stays quick and the retry logic is the same.
    Written into config.toml directly (`config set` has its own tests; a picbeam run per test costs a second)."""
    from picbeam.config import config_file

    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text("retry_wait = 0.01\n")


@pytest.fixture
def hosts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of host files that the picbeam command reads (PICBEAM_HOSTS_DIR)."""
    folder = tmp_path / "hosts.d"
    folder.mkdir()
    monkeypatch.setenv("PICBEAM_HOSTS_DIR", str(folder))
    return folder


@pytest.fixture
def images(tmp_path: Path):
    """make(n, folder=...) writes n distinct small PNGs and returns their paths in name order."""

    made = 0

    def make(count: int, folder: str = "images", size: int = 4) -> list[Path]:
        nonlocal made
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(count):
            path = root / f"img{i:04d}.png"
            made += 1
            path.write_bytes(png(size, size, seed=made))  # every image of a test has distinct content
            paths.append(path)
        return paths

    return make


@pytest.fixture
def x_display(monkeypatch: pytest.MonkeyPatch):
    """A real X11 clipboard: Xvfb on a free display, used through xclip. Yields the environment to run
    picbeam with (also set in this process). Skips only when Xvfb or xclip is not installed."""
    import os
    import shutil
    import subprocess

    missing = [tool for tool in ("Xvfb", "xclip") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian packages xvfb, xclip)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "64x64x24"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    os.close(write)
    try:
        with os.fdopen(read) as answer:
            number = answer.readline().strip()
        assert number, "Xvfb did not report its display"
        env = {"DISPLAY": f":{number}", "WAYLAND_DISPLAY": ""}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env
    finally:
        server.terminate()
        server.wait(10)


def set_clipboard(data: bytes, target: str) -> None:
    """Put data on the X11 clipboard (xclip forks to serve it; the child ends with the X server)."""
    import subprocess

    subprocess.run(["xclip", "-selection", "clipboard", "-target", target, "-in"], input=data, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)  # fmt: skip


def get_clipboard() -> str:
    import subprocess

    done = subprocess.run(["xclip", "-selection", "clipboard", "-out"], capture_output=True, timeout=10)
    return done.stdout.decode()
