"""How long `picbeam migrate` takes to move a blog of 1,000 posts and 5,000 images to a loopback host.

    python tests/bench/bench_migrate.py            # 1,000 posts, 5 images each (5,000 distinct images)
    python tests/bench/bench_migrate.py --quick    # 20 posts: a smoke run
    python tests/bench/bench_migrate.py --json

Each post is a Hexo-style Markdown file with front matter, a few paragraphs, a fenced code block that
holds image syntax (never touched), and five images: three inline (two of them ``/images/...`` paths),
one reference-style and one ``<img>`` tag. The host is tests/bench/server.py in its own process.
Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from picbeam.samples import png  # noqa: E402
from run import PYTHON, picbeam_command  # noqa: E402

POST = """---
title: Post {n}
date: 2024-01-01 10:00:00
tags: [bench]
---
Some words about post {n}, with an image: ![first](/images/{n}-0.png "First").

More words, and another: ![second](../images/{n}-1.png) and a third ![third](/images/{n}-2.png).

```markdown
![in a code block](/images/{n}-0.png)
```

A reference-style one: ![fourth][img{n}]

<img src="/images/{n}-4.png" alt="fifth" width="600">

[img{n}]: /images/{n}-3.png
"""


def make_blog(root: Path, posts: int, per_post: int) -> int:
    images = root / "source" / "images"
    images.mkdir(parents=True)
    (root / "source" / "_posts").mkdir()
    count = 0
    for n in range(posts):
        (root / "source" / "_posts" / f"post-{n:05d}.md").write_text(POST.format(n=n), encoding="utf-8")
        for i in range(per_post):
            # small distinct valid PNGs (metadata stripping reads them): this measures migrate, not the transfer
            (images / f"{n}-{i}.png").write_bytes(png(16, 16, seed=count + 1))
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--jobs", type=int, default=16)
    args = parser.parse_args()
    posts = 20 if args.quick else 1000
    with tempfile.TemporaryDirectory(prefix="picbeam-bench-migrate-") as temporary:
        scratch = Path(temporary)
        server = subprocess.Popen([PYTHON, str(HERE / "server.py")], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            url = f"http://127.0.0.1:{server.stdout.readline().strip()}/upload"
            hosts = scratch / "hosts.d"
            hosts.mkdir()
            (hosts / "bench.toml").write_text(f'endpoint = "{url}"\nurl_path = "data.url"\n')
            env = {
                **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                "PICBEAM_HOSTS_DIR": str(hosts),
                "XDG_CONFIG_HOME": str(scratch / "config"),
                "XDG_DATA_HOME": str(scratch / "data"),
            }
            blog = scratch / "blog"
            images = make_blog(blog, posts, 5)
            command = [*picbeam_command(), "migrate", str(blog), "--host", "bench", "--jobs", str(args.jobs)]
            figures: dict[str, object] = {"posts": posts, "images": images, "jobs": args.jobs}
            # the floor: the same images sent by `picbeam upload` (another ledger, so nothing is reused)
            upload = [*picbeam_command(), "upload", str(blog / "source" / "images"), "--host", "bench"]
            upload += ["--jobs", str(args.jobs), "--ledger", str(scratch / "upload-ledger.sqlite3")]
            for run, argv in (
                ("upload of the same images", upload),
                ("first run", command),
                ("re-run (no-op)", command),
            ):
                started = time.perf_counter()
                done = subprocess.run(argv, env=env, capture_output=True, text=True)
                elapsed = time.perf_counter() - started
                if done.returncode != 0:
                    raise SystemExit(f"{run} failed:\n{done.stderr[-2000:]}")
                figures[run] = {"seconds": round(elapsed, 2), "report": done.stderr.strip().splitlines()[-1]}
        finally:
            server.kill()
            server.wait()
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{posts} posts, {images} images, --jobs {args.jobs}")
    for run in ("upload of the same images", "first run", "re-run (no-op)"):
        entry = figures[run]
        assert isinstance(entry, dict)
        print(f"  {run}: {entry['seconds']} s  ({entry['report']})")


if __name__ == "__main__":
    main()
