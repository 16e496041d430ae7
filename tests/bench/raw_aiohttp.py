"""The floor: the same uploads with plain aiohttp and the same concurrency, nothing else.

``python raw_aiohttp.py URL JOBS FILE_OR_DIR...`` prints the number of URLs it got back.
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp


async def main(url: str, jobs: int, paths: list[str]) -> int:
    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(os.path.join(path, name) for name in sorted(os.listdir(path)))
        else:
            files.append(path)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in files:
        queue.put_nowait(name)
    urls = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal urls
        while not queue.empty():
            name = queue.get_nowait()
            form = aiohttp.FormData()
            form.add_field("file", open(name, "rb"), filename=os.path.basename(name), content_type="image/png")  # noqa: SIM115
            async with session.post(url, data=form) as response:
                answer = await response.json()
                urls += bool(answer["data"]["url"])

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=jobs)) as session:
        await asyncio.gather(*(worker(session) for _ in range(jobs)))
    return urls


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])))
