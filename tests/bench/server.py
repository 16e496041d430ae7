"""A fast loopback upload host for the benchmark: reads each body to the end, answers JSON.

Run as ``python server.py``; it prints its port on the first line and serves until killed.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from aiohttp import web

counter = itertools.count(1)


async def upload(request: web.Request) -> web.Response:
    received = 0
    async for chunk in request.content.iter_any():  # read everything, keep nothing
        received += len(chunk)
    number = next(counter)
    return web.json_response({"success": True, "data": {"url": f"http://127.0.0.1/f/{number}", "bytes": received}})


async def main() -> None:
    app = web.Application(client_max_size=0)
    app.router.add_post("/upload", upload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
