"""Processing before upload: metadata stripped by default, convert, resize, watermark, rename, settings
precedence, dedupe by processing signature, failures, temporary files. Images are generated here."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from picbeam.plugins.strip_metadata import strip
from picbeam.testing import Reply, run_picbeam, write_host
from pictures import animated_gif, decoded, exif_bytes, jpeg_with_exif, png_with_text, scene, webp_with_exif
from PIL import ImageChops

GPS_IFD = 0x8825


@pytest.fixture
def fake(fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    return ["--host", "fake"]


@pytest.fixture
def photos(tmp_path):
    """A folder with a JPEG (EXIF GPS + orientation 6, XMP, ICC, comment), a PNG with text chunks, a WebP
    with EXIF/XMP, an animated GIF and a corrupt JPEG."""
    folder = tmp_path / "photos"
    folder.mkdir()
    files = {
        "a-photo.jpg": jpeg_with_exif(),
        "b-drawing.png": png_with_text(),
        "c-leaf.webp": webp_with_exif(),
        "d-spinner.gif": animated_gif(),
        "e-broken.jpg": b"\xff\xd8\xff\xe1\x40\x00Exif\x00\x00truncated",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def sent(fake_host) -> dict[str, bytes]:
    """What arrived, by the uploaded file's name."""
    return {request.file.filename: request.file.data for request in fake_host.requests}


def test_metadata_is_stripped_by_default_losslessly_and_a_corrupt_file_fails_alone(fake, fake_host, photos):
    done = run_picbeam("upload", photos, *fake)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{photos / 'e-broken.jpg'}: fake: strip_metadata: this JPEG file is damaged" in done.stderr
    assert [bool(line) for line in done.lines] == [True, True, True, True, False]
    arrived = sent(fake_host)
    assert sorted(arrived) == ["a-photo.jpg", "b-drawing.png", "c-leaf.webp", "d-spinner.gif"]
    for name, data in arrived.items():
        original, stripped = decoded((photos / name).read_bytes()), decoded(data)
        assert stripped.tobytes() == original.tobytes(), name  # the same pixels
        exif = stripped.getexif()
        assert GPS_IFD not in exif and 0x010F not in exif, name  # no location, no camera
        assert "xmp" not in stripped.info and "comment" not in stripped.info, name
    jpeg = decoded(arrived["a-photo.jpg"])
    assert dict(jpeg.getexif()) == {0x0112: 6}  # still shows upright
    assert jpeg.info["icc_profile"] == decoded((photos / "a-photo.jpg").read_bytes()).info["icc_profile"]
    assert decoded(arrived["c-leaf.webp"]).info.get("icc_profile")
    png = decoded(arrived["b-drawing.png"])
    assert not {"Comment", "Author", "Location", "exif"} & set(png.info)
    assert arrived["d-spinner.gif"] == (photos / "d-spinner.gif").read_bytes()  # GIF: nothing to strip


def test_keep_metadata_sends_files_untouched(fake, fake_host, photos):
    done = run_picbeam("upload", photos / "a-photo.jpg", photos / "c-leaf.webp", "--keep-metadata", *fake)
    assert done.returncode == 0, done.stderr
    assert sent(fake_host) == {n: (photos / n).read_bytes() for n in ("a-photo.jpg", "c-leaf.webp")}


def test_stripping_is_idempotent_and_byte_exact_on_clean_files():
    for make, mime in ((jpeg_with_exif, "image/jpeg"), (png_with_text, "image/png"), (webp_with_exif, "image/webp")):
        once, removed = strip(mime, make())
        assert removed
        twice, again = strip(mime, once)
        assert twice == once and not again


def test_jpeg_trailing_data_and_multiple_scans_survive():
    import io

    out = io.BytesIO()
    scene(120, 90, 3).save(out, "JPEG", progressive=True, exif=exif_bytes())
    progressive = out.getvalue() + b"APPENDED-PREVIEW-WITH-GPS"
    stripped, removed = strip("image/jpeg", progressive)
    assert stripped.endswith(b"\xff\xd9") and "data after the image" in removed
    assert decoded(stripped).tobytes() == decoded(out.getvalue()).tobytes()


def test_convert_to_webp_and_avif_decodes_is_smaller_and_keeps_animation(fake, fake_host, photos):
    inputs = [photos / "a-photo.jpg", photos / "b-drawing.png", photos / "d-spinner.gif"]
    done = run_picbeam("upload", *inputs, "--convert", "webp", "--quality", "70", "--format", "json", *fake)
    assert done.returncode == 0, done.stderr
    arrived = {r.file.filename: r.file for r in fake_host.requests}
    assert sorted(arrived) == ["a-photo.webp", "b-drawing.webp", "d-spinner.webp"]
    for path in inputs:
        part = arrived[path.with_suffix(".webp").name]
        image = decoded(part.data)
        assert part.content_type == "image/webp" and image.format == "WEBP"
        assert len(part.data) < path.stat().st_size
        assert GPS_IFD not in image.getexif()
    photo = decoded(arrived["a-photo.webp"].data)
    assert photo.size == (240, 320)  # turned upright: orientation 6 rotates a 320x240 photo
    assert getattr(decoded(arrived["d-spinner.webp"].data), "n_frames", 1) == 4
    records = [json.loads(line) for line in done.lines]
    assert records[0]["bytes"] == len(arrived["a-photo.webp"].data)

    done = run_picbeam("upload", photos / "a-photo.jpg", "--convert", "avif", *fake)
    assert done.returncode == 0, done.stderr
    avif = fake_host.requests[-1].file
    assert avif.filename == "a-photo.avif" and decoded(avif.data).size == (240, 320)
    assert len(avif.data) < (photos / "a-photo.jpg").stat().st_size


def test_resize_bounds_hold_keep_aspect_and_never_upscale(fake, fake_host, tmp_path):
    import io

    sizes = {"wide.png": (400, 300), "tall.png": (300, 400), "small.png": (50, 40)}
    for name, size in sizes.items():
        out = io.BytesIO()
        scene(*size).save(out, "PNG")
        (tmp_path / name).write_bytes(out.getvalue())
    done = run_picbeam("upload", *(tmp_path / n for n in sizes), "--max-width", "100", "--max-height", "80", *fake)
    assert done.returncode == 0, done.stderr
    got = {name: decoded(data).size for name, data in sent(fake_host).items()}
    assert got == {"wide.png": (100, 75), "tall.png": (60, 80), "small.png": (50, 40)}
    assert sent(fake_host)["small.png"] == (tmp_path / "small.png").read_bytes()  # untouched, not re-encoded

    (tmp_path / "spinner.gif").write_bytes(animated_gif(frames=4, size=64))
    done = run_picbeam("upload", tmp_path / "spinner.gif", "--max-width", "32", *fake)
    assert done.returncode == 0, done.stderr
    spinner = decoded(fake_host.requests[-1].file.data)
    assert spinner.format == "GIF" and spinner.size == (32, 32) and spinner.n_frames == 4


def test_watermark_changes_only_its_corner(fake, fake_host, tmp_path):
    import io

    out = io.BytesIO()
    scene(400, 300, 7).save(out, "PNG")
    source = tmp_path / "plain.png"
    source.write_bytes(out.getvalue())
    done = run_picbeam("upload", source, "--watermark", "© picbeam", "--watermark-opacity", "0.8", *fake)
    assert done.returncode == 0, done.stderr
    marked = decoded(fake_host.requests[0].file.data).convert("RGB")
    box = ImageChops.difference(marked, decoded(source.read_bytes()).convert("RGB")).getbbox()
    assert box is not None
    left, top, right, bottom = box
    assert left >= 400 * 0.5 and top >= 300 * 0.7 and right <= 400 and bottom <= 300  # the bottom-right corner
    assert (right - left) <= 400 * 0.25 + 2  # scaled to a quarter of the width

    stamp = tmp_path / "stamp.png"
    scene(40, 20, 9, "RGBA").save(stamp)
    done = run_picbeam(
        "upload",
        source,
        "--watermark-image",
        stamp,
        "--watermark-position",
        "top-left",
        "--watermark-scale",
        "0.1",
        *fake,
    )
    assert done.returncode == 0, done.stderr
    marked = decoded(fake_host.requests[-1].file.data).convert("RGB")
    left, top, right, bottom = ImageChops.difference(marked, decoded(source.read_bytes()).convert("RGB")).getbbox()
    assert right <= 400 * 0.2 and bottom <= 300 * 0.2 and (right - left) <= 40


def test_rename_puts_the_templates_path_on_the_wire(fake, fake_host, photos):
    import hashlib

    original = (photos / "a-photo.jpg").read_bytes()
    done = run_picbeam(
        "upload", photos / "a-photo.jpg", "--convert", "webp", "--rename", "{year}/{month}/{sha256:8}{ext}", *fake
    )
    assert done.returncode == 0, done.stderr
    now = datetime.now()
    arrived = fake_host.requests[0].file
    assert arrived.filename == f"{now:%Y}/{now:%m}/{hashlib.sha256(arrived.data).hexdigest()[:8]}.webp"
    assert hashlib.sha256(arrived.data).digest() != hashlib.sha256(original).digest()


def test_dry_run_explain_says_what_would_be_done(fake, fake_host, photos):
    done = run_picbeam(
        "upload",
        photos / "a-photo.jpg",
        photos / "e-broken.jpg",
        "--dry-run",
        "--explain",
        "--max-width",
        "200",
        "--convert",
        "webp",
        "--rename",
        "{name}-web{ext}",
        *fake,
    )
    assert fake_host.requests == []
    assert done.returncode == 1
    line = done.lines[0]
    assert line.startswith(f"would upload {photos / 'a-photo.jpg'} as a-photo-web.webp (")
    assert "strip_metadata: removed EXIF (with GPS location), XMP, comment" in line
    assert "resize: 240x320 -> 200x267" in line and "convert: JPEG -> WEBP quality 80" in line
    assert "rename: a-photo.webp -> a-photo-web.webp" in line
    assert done.lines[1] == "" and "e-broken.jpg: fake: strip_metadata: this JPEG file is damaged" in done.stderr
    done = run_picbeam("upload", photos / "c-leaf.webp", "--dry-run", "--explain", "--format", "json", *fake)
    record = json.loads(done.stdout)
    assert record["dry_run"] and record["name"] == "c-leaf.webp"
    assert record["processing"] == ["strip_metadata: removed EXIF (with GPS location), XMP"]


def test_explain_without_dry_run_is_a_usage_error(fake, photos):
    done = run_picbeam("upload", photos / "a-photo.jpg", "--explain", *fake)
    assert done.returncode == 2 and "--explain goes with --dry-run" in done.stderr


def test_precedence_flags_over_host_over_config(fake_host, hosts_dir, home, photos):
    (home / "config" / "picbeam").mkdir(parents=True)
    (home / "config" / "picbeam" / "config.toml").write_text('[process]\nconvert = "png"\nquality = 50\n')
    write_host(hosts_dir, "plain", endpoint=fake_host.endpoint(), url_path="data.url")
    write_host(hosts_dir, "webby", endpoint=fake_host.endpoint(), url_path="data.url", process={"convert": "webp"})
    write_host(hosts_dir, "mirror", extends="local", root=str(home / "www"), process={"convert": "jpeg"})

    def name(*args: str) -> str:
        done = run_picbeam("upload", photos / "b-drawing.png", "--dry-run", "--explain", "--format", "json", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["name"]

    assert name("--host", "plain") == "b-drawing.png"  # config.toml: png
    assert name("--host", "webby") == "b-drawing.webp"  # the host's [process] wins over config.toml
    assert name("--host", "webby", "--convert", "avif") == "b-drawing.avif"  # the flag wins over both
    assert name("--host", "webby", "--convert", "none") == "b-drawing.png"  # none: keep the format
    assert name("--host", "mirror") == "b-drawing.jpg"  # a code host takes a [process] table too
    done = run_picbeam("config", "set", "process.convert", "webp")
    assert done.returncode == 0 and run_picbeam("config", "get", "process.convert").stdout.strip() == "webp"
    assert name("--host", "plain") == "b-drawing.webp"


def test_bad_processing_settings_are_one_line_errors(fake, hosts_dir, fake_host, photos, home):
    for args, message in (
        (["--convert", "bmp"], "option 'convert' must be one of webp, avif, jpeg, png or none"),
        (["--rename", "{nope}.png"], "option 'rename': unknown placeholder '{nope}'"),
        (["--watermark-image", "/nonexistent.png"], "--watermark-image /nonexistent.png: no such file"),
        (["--watermark", "x", "--watermark-position", "middle"], "option 'watermark_position' must be one of"),
    ):
        done = run_picbeam("upload", photos / "a-photo.jpg", *args, *fake)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    write_host(hosts_dir, "typo", endpoint=fake_host.endpoint(), url_path="data.url", process={"qualty": 80})
    done = run_picbeam("upload", photos / "a-photo.jpg", "--host", "typo")
    assert done.returncode == 2
    assert "typo.toml: host 'typo' [process] qualty: unknown option, did you mean quality?" in done.stderr


def test_dedupe_uses_the_original_hash_and_the_processing_signature(fake, fake_host, photos, home):
    photo = photos / "a-photo.jpg"

    def upload(*args: str) -> dict:
        done = run_picbeam("upload", photo, "--format", "json", *args, *fake)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first = upload()
    assert not first["reused"] and upload()["reused"]  # same original, same settings
    webp = upload("--convert", "webp")  # settings changed: processed and sent again
    assert not webp["reused"] and webp["url"] != first["url"]
    assert upload("--convert", "webp")["reused"]
    assert not upload("--convert", "webp", "--quality", "40")["reused"]
    assert len(fake_host.requests) == 3
    ledger = sqlite3.connect(home / "data" / "picbeam" / "ledger.sqlite3")
    rows = ledger.execute("SELECT sha256, variant, size FROM uploads ORDER BY id").fetchall()
    assert {sha for sha, _, _ in rows} == {first["sha256"]}  # the original's hash every time
    assert [variant for _, variant, _ in rows] == ["strip", "strip;convert=webp", "strip;convert=webp,q=40"]
    assert rows[0][2] < photo.stat().st_size  # the size of what was sent


def test_python_api_takes_processing_options(fake, fake_host, hosts_dir, photos):
    import picbeam

    results = picbeam.upload([photos / "b-drawing.png"], host="fake", process={"max_width": 50, "convert": "jpeg"})
    assert results[0].ok, results[0].error
    assert fake_host.requests[0].file.filename == "b-drawing.jpg"
    assert decoded(fake_host.requests[0].file.data).size == (50, 38)


def test_temporary_files_are_removed_after_the_run(fake, photos, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = run_picbeam("upload", photos, "--convert", "webp", *fake, env={"TMPDIR": str(scratch)})
    assert done.returncode == 1  # the broken file
    assert list(scratch.iterdir()) == []


def test_temporary_files_are_removed_on_ctrl_c(fake_host, hosts_dir, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for seed in range(12):
        (folder / f"p{seed:02d}.jpg").write_bytes(jpeg_with_exif(64, 48, seed))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    fake_host.reply(Reply(json={"data": {"url": "http://x/y.png"}}, delay=3))
    write_host(hosts_dir, "slow", endpoint=fake_host.endpoint(), url_path="data.url")
    process = subprocess.Popen(
        [sys.executable, "-m", "picbeam", "upload", str(folder), "--host", "slow", "-j", "2", "--convert", "webp"],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = datetime.now().timestamp() + 20
    while len(fake_host.requests) < 2 and datetime.now().timestamp() < deadline:
        import time

        time.sleep(0.05)
    assert any(scratch.iterdir())  # processed files wait to be sent
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert list(scratch.iterdir()) == []


@pytest.fixture(scope="module")
def processor_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with two third-party processors pip-installed: 'early' (a Processor at order 150, between
    strip_metadata and resize) and 'late' (the simple prepare_upload form: order 500, after convert and
    before rename)."""
    from test_plugins import make_distribution, venv_with

    root = tmp_path_factory.mktemp("processors")
    early = make_distribution(
        root,
        "picbeam-early",
        "picbeam_early",
        """
        from picbeam import Processor, hookimpl

        def process(item):
            item.notes.append(f"early: saw {item.mime} {item.name}")

        @hookimpl
        def register_processors(register):
            register(Processor("early", process, order=150))
    """,
    )
    late = make_distribution(
        root,
        "picbeam-late",
        "picbeam_late",
        """
        import os
        from pathlib import PurePosixPath

        from picbeam import hookimpl

        @hookimpl
        def prepare_upload(item):
            if "crash" in item.name:
                os._exit(3)  # a worker process dies: this file fails, the others go on
            item.notes.append(f"late: saw {item.mime} {item.name}, {item.read()[:4].decode()} bytes")
            out = item.temp_path(".webp")
            out.write_bytes(item.read())
            name = PurePosixPath(item.name)
            item.replace(path=out, name=f"{name.stem}-late{name.suffix}")
    """,
    )
    return venv_with(root, early, late)


def test_third_party_processors_run_in_order_with_the_built_ins(processor_venv, fake, fake_host, photos):
    from test_plugins import run_in

    done = run_in(
        processor_venv,
        "upload",
        photos / "a-photo.jpg",
        "--dry-run",
        "--explain",
        "--format",
        "json",
        "--convert",
        "webp",
        "--rename",
        "web/{name}{ext}",
        *fake,
    )
    assert done.returncode == 0, done.stderr
    notes = json.loads(done.stdout)["processing"]
    assert [note.split(":")[0] for note in notes] == ["strip_metadata", "early", "convert", "late", "rename"]
    assert notes[1] == "early: saw image/jpeg a-photo.jpg"
    assert notes[3] == "late: saw image/webp a-photo.webp, RIFF bytes"
    assert notes[4] == "rename: a-photo-late.webp -> web/a-photo-late.webp"

    crash = photos / "crash.jpg"
    crash.write_bytes(jpeg_with_exif(seed=5))
    done = run_in(
        processor_venv,
        "upload",
        photos / "a-photo.jpg",
        crash,
        photos / "b-drawing.png",
        "--convert",
        "webp",
        "--rename",
        "web/{name}{ext}",
        *fake,
    )
    assert done.returncode == 1
    assert f"{crash}: fake: processing this file crashed its worker process" in done.stderr
    assert sorted(sent(fake_host)) == ["web/a-photo-late.webp", "web/b-drawing-late.webp"]
    assert decoded(sent(fake_host)["web/a-photo-late.webp"]).format == "WEBP"


def test_without_pillow_stripping_works_and_converting_says_what_to_install(fake, fake_host, photos, tmp_path):
    blocker = tmp_path / "no-pillow" / "PIL"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('Pillow is not installed (test)')\n")
    env = {"PYTHONPATH": str(blocker.parent)}
    done = run_picbeam("upload", photos / "a-photo.jpg", "--convert", "webp", *fake, env=env)
    assert done.returncode == 2
    assert (
        done.stderr == "picbeam: error: --convert needs Pillow, which is not installed: pip install 'picbeam[image]'\n"
    )
    done = run_picbeam("upload", photos / "a-photo.jpg", *fake, env=env)
    assert done.returncode == 0, done.stderr
    assert GPS_IFD not in decoded(fake_host.requests[0].file.data).getexif()


def test_formats_picbeam_cannot_strip_are_sent_with_a_warning(fake, fake_host, tmp_path):
    heic = tmp_path / "phone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    done = run_picbeam("upload", heic, *fake)
    assert done.returncode == 0, done.stderr
    assert fake_host.requests[0].file.data == heic.read_bytes()
    assert "picbeam: metadata was not removed from image/heic files" in done.stderr


def test_stripping_a_big_file_streams_it(tmp_path):
    import struct
    import tracemalloc
    import zlib

    from picbeam.plugins.strip_metadata import Source, strip_png

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    big = tmp_path / "big.png"
    size = 256 * 1024 * 1024
    with open(big, "wb") as handle:  # sparse: a 256 MiB IDAT that takes no disk space
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)))
        handle.write(chunk(b"tEXt", b"Comment\x00secret place"))
        handle.write(struct.pack(">I", size) + b"IDAT")
        handle.seek(size, os.SEEK_CUR)
        handle.write(b"\0\0\0\0" + chunk(b"IEND", b""))
    tracemalloc.start()
    with open(big, "rb") as source, open(os.devnull, "wb") as out:
        splice, removed = strip_png(Source(source, big.stat().st_size))
        for piece in splice.chunks(source):
            out.write(piece)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert removed == ["text"] and peak < 8 * 1024 * 1024
    assert splice.size == big.stat().st_size - len(chunk(b"tEXt", b"Comment\x00secret place"))


def test_a_big_file_that_changes_while_it_is_processed_is_not_sent(fake_host, tmp_path):
    import asyncio
    import io
    import types

    from picbeam import HostSpec, hookimpl
    from picbeam.api import open_batch
    from picbeam.config import Config
    from picbeam.hosts import SpecHost
    from picbeam.inputs import Discovery
    from picbeam.loader import Plugins
    from picbeam.plugins import strip_metadata

    big = tmp_path / "big.png"
    out = io.BytesIO()
    scene(700, 700, 4).save(out, "PNG", compress_level=0, pnginfo=None)
    big.write_bytes(out.getvalue() + b"trailing")  # over the in-memory limit: processors read it again
    meddler = types.ModuleType("meddler")

    @hookimpl
    def prepare_upload(item):  # the file changes after it was hashed, before it is stripped
        os.utime(item.source, ns=(0, 10**9))

    meddler.prepare_upload = prepare_upload
    plugins = Plugins()
    plugins.add(strip_metadata, "strip_metadata")
    plugins.add(meddler, "meddler")
    results = []
    host = SpecHost(HostSpec(name="fake", endpoint=fake_host.endpoint(), url_path="data.url"))
    with open_batch(host, Config(), plugins=plugins, ledger=False, emit=results.append) as batch:
        asyncio.run(batch.run(Discovery([big])))
    assert results[0].error == "the file changed while it was being processed; run again to send its new content"
    assert fake_host.requests == []


def test_two_versions_of_one_photo_do_not_take_each_others_place(home, photos):
    urls = []
    for args in ([], ["--max-width", "100"]):
        done = run_picbeam("upload", photos / "a-photo.jpg", *args)  # the local host names files by content
        assert done.returncode == 0, done.stderr
        urls.append(done.stdout.strip())
    assert urls[0] != urls[1]
    stored = [decoded(Path(url.removeprefix("file://")).read_bytes()) for url in urls]
    assert [image.size for image in stored] == [(320, 240), (100, 133)]


def _on_disk_while_arriving(fake_host, scratch: Path) -> list[list[str]]:
    """What is in ``scratch`` (the run's TMPDIR) at each moment a file has arrived at the host."""
    seen: list[list[str]] = []

    def answer(request, host):
        seen.append(sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")))
        return host.default_reply(request)

    fake_host.respond_with(answer)
    return seen


def test_small_files_are_stripped_in_memory_and_one_with_nothing_to_strip_is_sent_as_it_is(fake, fake_host, tmp_path):
    import io

    clean, tagged = tmp_path / "clean.png", tmp_path / "tagged.png"
    out = io.BytesIO()
    scene(120, 90, 7).save(out, "PNG")
    clean.write_bytes(out.getvalue())
    tagged.write_bytes(png_with_text())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seen = _on_disk_while_arriving(fake_host, scratch)
    done = run_picbeam("upload", clean, tagged, *fake, "-j", "1", env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    arrived = sent(fake_host)
    assert arrived["clean.png"] == clean.read_bytes()  # nothing to remove: the very bytes
    stripped, removed = strip("image/png", tagged.read_bytes())
    assert arrived["tagged.png"] == stripped and removed
    assert seen == [[], []]  # no temporary folder, no copy: neither file was written anywhere


def test_a_big_file_streams_through_the_stripper_and_arrives_stripped(fake, fake_host, tmp_path, monkeypatch):
    """Over the in-memory limit, to a host that reads the file as a stream: no copy is written, every attempt
    (the first ones fail) sends the whole stripped file, and a host that needs a file gets the same bytes."""
    import io

    from picbeam.items import IN_MEMORY_LIMIT

    photo, drawing = tmp_path / "photo.jpg", tmp_path / "drawing.png"
    photo.write_bytes(jpeg_with_exif(1800, 1400, seed=3, quality=95))
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at 12 Rue Example")
    out = io.BytesIO()
    scene(700, 700, 4).save(out, "PNG", compress_level=0, pnginfo=info)
    drawing.write_bytes(out.getvalue())
    for path in (photo, drawing):
        assert path.stat().st_size > IN_MEMORY_LIMIT
    expected = {
        "photo.jpg": strip("image/jpeg", photo.read_bytes()),
        "drawing.png": strip("image/png", drawing.read_bytes()),
    }
    assert all(removed for _, removed in expected.values())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seen = _on_disk_while_arriving(fake_host, scratch)
    fake_host.script([Reply(status=503, text="busy"), Reply(status=503, text="busy")])
    done = run_picbeam("upload", photo, drawing, *fake, "-j", "2", env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    for name, (stripped, _) in expected.items():
        attempts = [r.file.data for r in fake_host.requests if r.file.filename == name]
        assert len(attempts) >= 1 and all(data == stripped for data in attempts), name
    assert len(fake_host.requests) == 4 and seen == [[], []]
    jpeg = decoded(expected["photo.jpg"][0])
    assert dict(jpeg.getexif()) == {0x0112: 6} and "xmp" not in jpeg.info and "comment" not in jpeg.info
    assert decoded(expected["photo.jpg"][0]).tobytes() == decoded(photo.read_bytes()).tobytes()

    # A host that takes the file as the whole request body streams the same bytes, with their length.
    write_host(
        Path(os.environ["PICBEAM_HOSTS_DIR"]), "put", endpoint=fake_host.endpoint(), body="binary", url_path="data.url"
    )
    fake_host.requests.clear()
    done = run_picbeam("upload", drawing, "--host", "put", env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    (request,) = fake_host.requests
    assert request.body == expected["drawing.png"][0]
    assert request.headers["Content-Length"] == str(len(request.body))

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    store = tmp_path / "store"
    write_host(Path(os.environ["PICBEAM_HOSTS_DIR"]), "disk", extends="local", root=str(store))
    done = run_picbeam("upload", photo, "--host", "disk", env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip().removeprefix("file://")).read_bytes() == expected["photo.jpg"][0]
    assert list(scratch.iterdir()) == []


def _exiftool(path: Path) -> dict[str, object]:
    """Every tag exiftool finds, keyed "group:name" (exiftool is the oracle for what metadata a file holds)."""
    done = subprocess.run(["exiftool", "-json", "-a", "-G1", str(path)], capture_output=True, text=True, check=True)
    return {
        key: value for key, value in json.loads(done.stdout)[0].items() if not key.startswith(("System:", "ExifTool:"))
    }


def _with_jfif_thumbnail(jpeg: bytes) -> bytes:
    """``jpeg`` with an 8x8 RGB thumbnail inside its JFIF APP0 segment."""
    import struct

    assert jpeg[2:4] == b"\xff\xe0"
    (length,) = struct.unpack(">H", jpeg[4:6])
    payload = jpeg[6 : 4 + length][:12] + bytes([8, 8]) + bytes(range(192))
    return jpeg[:2] + b"\xff\xe0" + struct.pack(">H", len(payload) + 2) + payload + jpeg[4 + length :]


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="needs exiftool (apt install libimage-exiftool-perl)")
def test_a_jfif_thumbnail_and_gif_comments_and_xmp_are_stripped_as_exiftool_sees_it(fake, fake_host, tmp_path):
    photo, spinner = tmp_path / "thumb.jpg", tmp_path / "spinner.gif"
    photo.write_bytes(_with_jfif_thumbnail(jpeg_with_exif(160, 120, seed=2)))
    spinner.write_bytes(animated_gif())
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-Comment=shot at home", "-XMP-dc:Creator=someone",
         "-XMP-exif:GPSLatitude=48.85", str(spinner)],
        check=True,
    )  # fmt: skip
    before = {path.name: _exiftool(path) for path in (photo, spinner)}
    assert "JFIF:ThumbnailTIFF" in before["thumb.jpg"]
    assert before["spinner.gif"]["XMP-dc:Creator"] == "someone" and "File:Comment" in before["spinner.gif"]
    done = run_picbeam("upload", photo, spinner, *fake, "--format", "json")
    assert done.returncode == 0, done.stderr
    for name, data in sent(fake_host).items():
        (tmp_path / f"sent-{name}").write_bytes(data)
    after = {name: _exiftool(tmp_path / f"sent-{name}") for name in before}
    assert not [tag for tag in after["thumb.jpg"] if "Thumbnail" in tag]
    assert after["thumb.jpg"]["JFIF:JFIFVersion"] == before["thumb.jpg"]["JFIF:JFIFVersion"]  # the header stays
    assert not [tag for tag in after["spinner.gif"] if tag.startswith("XMP") or tag.endswith(":Comment")]
    assert after["spinner.gif"]["GIF:FrameCount"] == 4 and after["spinner.gif"]["GIF:AnimationIterations"]
    original, stripped = decoded(spinner.read_bytes()), decoded(sent(fake_host)["spinner.gif"])
    assert original.n_frames == stripped.n_frames
    for index in range(original.n_frames):
        original.seek(index)
        stripped.seek(index)
        assert original.convert("RGBA").tobytes() == stripped.convert("RGBA").tobytes()
    assert decoded(sent(fake_host)["thumb.jpg"]).tobytes() == decoded(photo.read_bytes()).tobytes()


@pytest.mark.parametrize("split", [b"\xff\x00", b"\xff\xd3", b"\xff\xff\xd9"])
def test_jpeg_scan_data_is_kept_whole_when_a_marker_byte_ends_a_read(split):
    """The entropy-coded data is searched a megabyte at a time: a 0xFF that ends one read is decided by the
    next read's first byte (a stuffed zero, a restart marker, or fill before the end-of-image marker)."""
    from picbeam.plugins.strip_metadata import CHUNK

    exif = b"\xff\xe1\x00\x10Exif\x00\x00II*\x00\x08\x00\x00\x00"
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    head = b"\xff\xd8" + exif + sos
    scan = b"\x12" * (CHUNK - 1 - len(head)) + split + (b"" if split.endswith(b"\xd9") else b"\x34" * 100 + b"\xff\xd9")
    stripped, removed = strip("image/jpeg", head + scan)
    assert removed == ["EXIF"]
    assert stripped == b"\xff\xd8" + sos + scan


def test_a_damaged_gif_fails_in_one_line(fake, fake_host, tmp_path):
    cases = {
        "table.gif": (b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "the colour table runs past the end of the file"),
        "comment.gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00!\xfe\x05ab", "an extension runs past the end of the file"),
        "block.gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x07", "an unknown block type 0x07"),
        "image.gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00,\x00\x00", "it ends inside an image descriptor"),
    }
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    done = run_picbeam("upload", *(tmp_path / name for name in cases), *fake)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for name, (_, problem) in cases.items():
        message = f"{tmp_path / name}: fake: strip_metadata: this GIF file is damaged ({problem}); --keep-metadata"
        assert message in done.stderr
    assert fake_host.requests == []
