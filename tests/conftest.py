from __future__ import annotations

from pathlib import Path

import pytest
from picbeam.samples import png

pytest_plugins = ["picbeam.testing", "storage_servers"]

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def home(picbeam_home: Path) -> Path:
    """Every test runs with its own config, data and ledger folders."""
    return picbeam_home


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
