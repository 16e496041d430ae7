"""Throughput of processing: a batch of generated photos (JPEG with EXIF GPS, default 1600x1200) uploaded
by the real ``picbeam upload`` command to a loopback host, strip only (the default) against strip+convert.

    python tests/bench/bench_processing.py                 # 500 photos, -j 4, strip vs strip+convert webp
    python tests/bench/bench_processing.py --count 100 --convert avif --jobs 8

The photos are generated once into a cache folder (``--photos``). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: pictures

from picbeam.testing import FakeHost, Reply, run_picbeam, write_host
from pictures import exif_bytes, scene, srgb
from PIL import ImageChops, ImageDraw


def make_photos(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` distinct photo-like JPEGs with EXIF (GPS, orientation, camera) and an ICC profile."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo{i:04d}.jpg" for i in range(count)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        base, exif, icc = scene(width, height, 11), exif_bytes(orientation=1), srgb()
        for path in missing:
            i = int(path.stem[5:])
            image = ImageChops.offset(base, (i * 37) % width, (i * 53) % height)
            ImageDraw.Draw(image).rectangle((i % 200, i % 150, i % 200 + 120, i % 150 + 90), fill=(i % 256, 40, 200))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=88, exif=exif, icc_profile=icc)
            path.write_bytes(out.getvalue())
    return paths


def run(label: str, photos: Path, host: str, jobs: int, extra: list[str], env: dict[str, str]) -> None:
    started, cpu = time.perf_counter(), _children_cpu()
    done = run_picbeam("upload", photos, "--host", host, "-j", str(jobs), "--no-ledger", *extra, env=env, timeout=3600)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{label}: picbeam failed: {done.stderr.strip()}")
    count = len(done.lines)
    print(
        f"{label:<28} {count} files in {seconds:6.1f} s = {count / seconds:6.1f} files/s; "
        f"CPU {cpu:5.1f} s = {1000 * cpu / count:5.1f} ms/file (picbeam and its worker processes)"
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--convert", default="webp")
    parser.add_argument("--photos", type=Path, default=Path(tempfile.gettempdir()) / "picbeam-bench-photos")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    photos = args.photos / f"{args.size}-{args.count}"
    paths = make_photos(photos, args.count, width, height)
    total = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} JPEGs {args.size} with EXIF GPS, {total / 1e6:.0f} MB, {os.cpu_count()} CPUs, -j {args.jobs}")
    with tempfile.TemporaryDirectory() as home, FakeHost() as host:
        sizes: list[int] = []

        def answer(request, fake):  # keep only the sizes: 500 photos need not stay in memory
            sizes.append(len(request.files[0].data))
            fake.requests.clear()
            return Reply(json={"data": {"url": f"{fake.url}/x/{request.number}"}})

        host.respond_with(answer)
        write_host(Path(home) / "hosts", "bench", endpoint=host.endpoint(), url_path="data.url")
        env = {"XDG_CONFIG_HOME": f"{home}/c", "XDG_DATA_HOME": f"{home}/d", "PICBEAM_HOSTS_DIR": f"{home}/hosts"}
        for label, extra in (
            ("strip only (default)", []),
            (f"strip + convert {args.convert}", ["--convert", args.convert]),
            ("nothing (--keep-metadata)", ["--keep-metadata"]),
        ):
            sizes.clear()
            run(label, photos, "bench", args.jobs, extra, env)
            print(f"{'':<28} sent {sum(sizes) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
