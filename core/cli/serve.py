"""`picbeam serve`: a PicGo-compatible upload server for editors, on loopback unless told otherwise."""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import EXIT_FAILED, Run, command, fail, on_interrupt, open_hosts, output_format, run_async, warn


def register(app: typer.Typer) -> None:
    app.command("serve")(command(serve, "serve"))


def serve(
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on.")] = 36677,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            help="Listen on ADDRESS[:PORT] instead of loopback (then a secret is required).",
            show_default=False,
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            envvar="PICBEAM_SERVER_SECRET",
            show_default=False,
            show_envvar=True,
            help="Secret clients must send (Authorization: Bearer, X-PicGo-Secret or ?secret=).",
        ),
    ] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin", help="Serve (with CORS) requests from this web origin (repeatable).", show_default=False
        ),
    ] = None,
    allow_any_file: Annotated[
        bool, typer.Option("--allow-any-file", help="Upload files that are not images too.")
    ] = False,
    root: Annotated[
        list[Path] | None,
        typer.Option("--root", help="Only upload local files under this folder (repeatable).", show_default=False),
    ] = None,
    allow_private_urls: Annotated[
        bool, typer.Option("--allow-private-urls", help="Fetch URL entries from loopback and private addresses.")
    ] = False,
    max_body: Annotated[
        int, typer.Option("--max-body", min=1, help="Largest request body or fetched URL, in MB.")
    ] = 100,
    *,
    options: dict[str, Any],
    process: dict[str, Any],
) -> None:
    """Serve the PicGo upload protocol (POST /upload, /heartbeat) for Typora, Obsidian, VS Code..., and a web
    app at / to upload, browse, copy and delete in the browser.

    --host picks the host (a request may pick another with ?host=NAME); --format NAME makes each entry of
    the answer's `result` that format's text instead of the bare URL.
    """
    from ..mirrors import hosts_for
    from ..processing import resolve
    from ..server import ServerOptions, check_origin

    run = Run(options)
    plugins, config, registry = open_hosts(run.hosts_dirs)
    fmt = output_format(run.format, config)
    names = run.host or [config.default_host()]
    host_name = names[0]
    for chosen in [h for group in hosts_for(registry, names, run.fallback, run.overrides) for h in group]:
        chosen.prepared()  # a missing ${VAR} or unknown host stops here, not at the first request
        resolve(process, chosen.process, config.get("process"), host_name=chosen.name)  # bad flags stop here too
    addresses, port, public = _listen_addresses(listen, port)
    if public and not secret:
        fail(f"--listen {listen} lets other machines connect: set a secret with --secret or PICBEAM_SERVER_SECRET")
    if secret is not None and len(secret) < 16:
        warn("the secret is short; use at least 16 random characters (e.g. `openssl rand -hex 16`)")
    for folder in root or ():
        if not folder.is_dir():
            fail(f"--root {folder}: not a folder")
    options = ServerOptions(
        host=host_name, secret=secret or None, allow_origins=frozenset(check_origin(o) for o in allow_origin or ()),
        allow_any_file=allow_any_file, roots=tuple(root or ()), allow_private_urls=allow_private_urls,
        max_body=max_body * 1024 * 1024, public=public, format=fmt, overrides=tuple(run.overrides), process=process,
        mirrors=tuple(names[1:]), fallbacks=tuple(run.fallback), **run.batch_options(),
    )  # fmt: skip
    run_async(_serve(options, plugins, config, registry, addresses, port))


def _listen_addresses(listen: str | None, port: int) -> tuple[list[str], int, bool]:
    """The addresses to bind, the port, and whether that reaches beyond this machine."""
    if listen is None:
        return ["127.0.0.1", "::1"], port, False
    address = listen.strip()
    if address.startswith("["):  # [::1]:36677
        address, _, rest = address[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], listen)
    elif address.count(":") == 1:  # 0.0.0.0:36677
        address, _, text = address.partition(":")
        port = _port(text, listen)
    try:
        loopback = ipaddress.ip_address(address or "invalid").is_loopback
    except ValueError:
        if address != "localhost":
            fail(f"--listen {listen}: expected an IP address, optionally with :PORT (0.0.0.0, [::], 192.168.1.5:36677)")
        loopback = True
    return [address], port, not loopback


def _port(text: str, listen: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        fail(f"--listen {listen}: the port must be a number from 0 to 65535")
    return int(text)


async def _serve(options: Any, plugins: Any, config: Any, registry: Any, addresses: list[str], port: int) -> None:
    from ..server import PicGoServer

    def log(line: str) -> None:
        print(f"picbeam serve: {line}", file=sys.stderr, flush=True)

    server = PicGoServer(options, plugins, config, registry, log=log)
    await server.start()
    bound: list[str] = []
    try:
        for address in addresses:
            try:
                # --port 0: every address gets the port the first got
                port = await server.listen(address, port)
            except OSError as exc:
                if bound:  # the second loopback address (::1) is optional: IPv6 may be off
                    continue
                fail(f"cannot listen on {address}:{port}: {exc.strerror or exc}", EXIT_FAILED)
            bound.append(f"[{address}]" if ":" in address else address)
        stop = asyncio.Event()
        on_interrupt(stop.set)
        secret = "required" if options.secret else "none"
        urls = " and ".join(f"http://{address}:{port}/upload" for address in bound)
        print(f"picbeam: serving the PicGo protocol on {urls} (host {options.host}, secret {secret}); Ctrl-C stops",
              file=sys.stderr, flush=True)  # fmt: skip
        print(f"picbeam: the web app (upload, gallery, hosts) is at http://{bound[0]}:{port}/", file=sys.stderr,
              flush=True)  # fmt: skip
        await stop.wait()
        print("picbeam: stopped", file=sys.stderr, flush=True)
    finally:
        await server.stop()
