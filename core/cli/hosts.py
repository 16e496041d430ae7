"""`picbeam hosts`: list, show, check, add, import and export hosts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import user_hosts_dir
from ..errors import ConfigError
from ..redaction import literal_secrets
from ..spec import HostSpec, dump_toml
from .common import (
    EXIT_FAILED,
    EXIT_USAGE,
    HostsDirOption,
    JsonOption,
    complete_hosts,
    fail,
    open_hosts,
    run_async,
    warn,
)

hosts_app = typer.Typer(help="List, show, check, add, import and export hosts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(hosts_app, name="hosts")


@hosts_app.command("list")
def list_hosts(as_json: JsonOption = False, hosts_dir: HostsDirOption = None) -> None:
    """List every host: name, plugin and description (--json adds where each is defined)."""
    _, config, registry = open_hosts(hosts_dir)
    rows = [
        {
            "name": name,
            "plugin": entry.plugin,
            "source": entry.host.source,
            "description": entry.host.description,
            "default": name == config.default_host(),
        }
        for name, entry in sorted(registry.entries.items())
    ]
    broken = [{"name": name, "error": error} for name, error in sorted(registry.broken.items())]
    if as_json:
        print(json.dumps({"hosts": rows, "broken": broken}, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4) + 2
    plugin_width = max((len(r["plugin"]) for r in rows), default=6) + 2  # "hosts_folder" ran into the text
    for row in rows:
        mark = "*" if row["default"] else " "
        print(f"{mark} {row['name']:<{width}}{row['plugin']:<{plugin_width}}{row['description']}")
    for entry in broken:
        warn(f"host '{entry['name']}' is unusable: {entry['error']}")
    for name in registry.names():
        registry.say_warnings(name)


@hosts_app.command("show")
def show_host(
    name: Annotated[str, typer.Argument(help="Host name.", autocompletion=complete_hosts)],
    as_json: JsonOption = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Show with FIELD=VALUE overrides applied.")
    ] = None,
    hosts_dir: HostsDirOption = None,
) -> None:
    """Print a host's effective configuration, secrets masked (`${VAR}` references shown as written)."""
    _, _, registry = open_hosts(hosts_dir)
    host = registry.select(name, overrides or ())
    described = host.describe()
    if host.process:  # a code host's describe() need not know about its [process] table
        from ..processing import process_options
        from ..redaction import MASK

        known = process_options()
        described["process"] = {k: MASK if k in known and known[k].secret and v else v
                                for k, v in host.process.items()}  # fmt: skip
    if as_json:
        print(json.dumps({**described, "source": host.source}, indent=2, ensure_ascii=False))
    else:
        print(f"# {name}: from {host.source}")
        print(dump_toml({k: v for k, v in described.items() if v not in (None, [], {})}), end="")


@hosts_app.command("check")
def check_host(
    name: Annotated[str, typer.Argument(help="Host name.", autocompletion=complete_hosts)],
    probe: Annotated[bool, typer.Option("--probe", help="Also upload a tiny generated PNG and print its URL.")] = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Check with FIELD=VALUE overrides applied.")
    ] = None,
    hosts_dir: HostsDirOption = None,
) -> None:
    """Validate a host: its definition, its ${VAR} references and, with --probe, a real upload."""
    _, config, registry = open_hosts(hosts_dir)
    host = registry.select(name, overrides or ())
    host.prepared()  # expands ${VAR}: a missing variable is reported here
    print(f"{name}: configuration OK ({host.source})")
    if not probe:
        return
    import tempfile

    from ..api import open_batch
    from ..inputs import Found
    from ..samples import png

    results: list[Any] = []
    with tempfile.TemporaryDirectory() as folder:
        sample = Path(folder, "picbeam-probe.png")
        sample.write_bytes(png(8, 8, seed=int.from_bytes(os.urandom(4), "big")))
        with open_batch(host, config, jobs=1, retries=1, ledger=False, emit=results.append) as batch:
            run_async(batch.run([Found(sample, explicit=True)]))
    result = results[0]
    if result.error:
        fail(f"{name}: probe upload failed: {result.error}", EXIT_FAILED)
    print(f"{name}: probe uploaded: {result.url}")


@hosts_app.command("add")
def add_host(
    name: Annotated[str, typer.Argument(help="Name of the new host (the file is NAME.toml).")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="Upload API address.")],
    file_field: Annotated[str, typer.Option("--file-field", help="Form field that carries the file.")] = "file",
    url_path: Annotated[
        str | None, typer.Option("--url-path", help="JMESPath to the URL in the answer (e.g. data.url).")
    ] = None,
    headers: Annotated[
        list[str] | None,
        typer.Option("--header", help="Request header: 'Name: value', or a JSON object of them (repeatable)."),
    ] = None,
    form: Annotated[
        list[str] | None,
        typer.Option("--form", help="Extra form field: KEY=VALUE, or a JSON object of them (repeatable)."),
    ] = None,
    query: Annotated[list[str] | None, typer.Option("--query", help="KEY=VALUE query parameter (repeatable).")] = None,
    url_prefix: Annotated[str, typer.Option("--url-prefix", help="Text put in front of the extracted URL.")] = "",
    method: Annotated[str, typer.Option("--method", help="HTTP method.")] = "POST",
    body: Annotated[str, typer.Option("--body", help="multipart or binary.")] = "multipart",
    response: Annotated[str, typer.Option("--response", help="json, text or xml.")] = "json",
    thumbnail_path: Annotated[str | None, typer.Option("--thumbnail-path", help="JMESPath to a thumbnail URL.")] = None,
    delete_path: Annotated[str | None, typer.Option("--delete-path", help="JMESPath to a delete URL.")] = None,
    error_path: Annotated[str | None, typer.Option("--error-path", help="JMESPath to the error message.")] = None,
    success_path: Annotated[
        str | None, typer.Option("--success-path", help="JMESPath that is true on success.")
    ] = None,
    delete_endpoint: Annotated[
        str | None,
        typer.Option(
            "--delete-endpoint",
            help="URL template for `picbeam delete`, {jmespath} filled from the answer (e.g. delete/{data.hash}).",
        ),
    ] = None,
    delete_method: Annotated[
        str | None, typer.Option("--delete-method", help="GET, POST or DELETE for --delete-endpoint (default: DELETE).")
    ] = None,
    max_bytes: Annotated[int | None, typer.Option("--max-bytes", help="Largest file the host takes.")] = None,
    description: Annotated[str, typer.Option("--description", help="One line about the host.")] = "",
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder to write to (default: ~/.config/picbeam/hosts.d).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a host file from the remote-API fields (endpoint, file field, JSON path, headers, body, prefix)."""
    fields: dict[str, Any] = {
        "description": description,
        "endpoint": endpoint,
        "method": method,
        "file_field": file_field,
        "body": body,
        "response": response,
        "url_path": url_path,
        "url_prefix": url_prefix,
        "thumbnail_path": thumbnail_path,
        "delete_path": delete_path,
        "error_path": error_path,
        "success_path": success_path,
        "delete_endpoint": delete_endpoint,
        "delete_method": delete_method,
        "max_bytes": max_bytes,
        "query": _pairs(query, "=", "--query"),
        "headers": _pairs(headers, ":", "--header"),
        "form": _pairs(form, "=", "--form"),
    }
    spec = HostSpec.from_mapping(
        {k: v for k, v in fields.items() if v not in (None, "")}, source="hosts add", name=name
    )
    write_host_file(spec, directory, force=force)


def write_host_file(spec: HostSpec, directory: Path | None, *, force: bool) -> Path:
    """Write NAME.toml (mode 0600: it may hold tokens) to the user's hosts folder or ``directory``;
    refuse to replace a file without ``force``, and warn about literal secrets."""
    return write_fields(spec.name, spec.to_mapping(), directory, force=force)


def write_fields(name: str, fields: dict[str, Any], directory: Path | None, *, force: bool) -> Path:
    """Write a host file's fields as NAME.toml (mode 0600), as :func:`write_host_file` does."""
    folder = directory or user_hosts_dir()
    target = folder / f"{name}.toml"
    if target.exists() and not force:
        fail(f"{target} exists; use --force to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    literal = literal_secrets(fields)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(dump_toml({k: v for k, v in fields.items() if k != "name"}))
    print(f"wrote {target}")
    if literal:
        warn(f"{', '.join(literal)} holds a literal secret in {target}; prefer a reference such as '${{MY_TOKEN}}'")
    return target


def _pairs(values: list[str] | None, separator: str, option: str) -> dict[str, str]:
    """``KEY<separator>VALUE`` options, each of which may instead be a JSON object of such pairs (the
    notation PicGo, Qexo and ShareX users paste: ``{"Authorization": "Bearer ..."}``)."""
    pairs: dict[str, str] = {}
    shape = "'Name: value'" if separator == ":" else "KEY=VALUE"
    for value in values or ():
        if value.lstrip().startswith("{"):
            try:
                table = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"{option} {value!r}: not a JSON object ({exc.msg}); or give {shape}") from None
            if not isinstance(table, dict):
                raise ConfigError(f"{option} {value!r}: expected a JSON object or {shape}")
            for key, entry in table.items():
                if isinstance(entry, dict | list) or entry is None:
                    raise ConfigError(f"{option}: the value of {key!r} must be text, not {json.dumps(entry)}")
                pairs[str(key).strip()] = entry if isinstance(entry, str) else json.dumps(entry)
            continue
        key, sep, rest = value.partition(separator)
        if not sep or not key.strip():
            raise ConfigError(f"{option} {value!r}: expected {shape} or a JSON object")
        pairs[key.strip()] = rest.strip()
    return pairs


@hosts_app.command("import")
def import_hosts(
    file: Annotated[
        Path, typer.Argument(help="ShareX .sxcu, PicGo/PicList config.json, Qexo settings or uPic export.")
    ],
    name: Annotated[str | None, typer.Option("--name", help="Name of the new host (default: from the file).")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder to write to (default: ~/.config/picbeam/hosts.d).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    file_format: Annotated[
        str | None, typer.Option("--format", help="sharex, picgo, qexo or upic (default: detected).")
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Import only this host (a name the import would write).")
    ] = None,
) -> None:
    """Write hosts.d files from another tool's configuration, so nobody retypes a host."""
    from ..importers import ImportRefused, read

    results = read(file, name=None if only else name, format=file_format)
    if only:
        results = _only(results, only, file)
        if name:
            for result in results:
                if not isinstance(result, ImportRefused):
                    result.name = name
    registry = None
    written = 0
    for result in results:
        if isinstance(result, ImportRefused):
            print(f"picbeam: error: {result}", file=sys.stderr)
            continue
        if "extends" in result.fields:  # a picbeam host with the tool's settings: checked by that host
            if registry is None:
                registry = open_hosts()[2]
            fields = {k: v for k, v in result.fields.items() if k != "extends"}
            registry.get(result.fields["extends"]).configured(result.name, fields, source=str(file))
            write_fields(result.name, result.fields, directory, force=force)
        else:
            spec = HostSpec.from_mapping(result.fields, source=str(file), name=result.name)
            write_host_file(spec, directory, force=force)
        written += 1
        for note in result.notes:
            warn(f"{result.name}: {note}")
    if written == 0:
        raise typer.Exit(EXIT_USAGE)
    if written < len(results):
        raise typer.Exit(EXIT_FAILED)


def _only(results: list[Any], only: str, file: Path) -> list[Any]:
    """The one result named ``only`` (a refusal names its section in its message)."""
    chosen = [r for r in results if getattr(r, "name", None) == only or (not hasattr(r, "name") and only in str(r))]
    if not chosen:
        names = ", ".join(r.name for r in results if hasattr(r, "name")) or "none"
        fail(f"{file}: --only {only}: no such host in the file (it imports: {names})")
    return chosen[:1]


@hosts_app.command("export")
def export_host(
    name: Annotated[
        str,
        typer.Argument(help="A declarative host (a hosts.d file or a HostSpec preset).", autocompletion=complete_hosts),
    ],
    as_format: Annotated[str, typer.Option("--as", help="Format to write: sxcu (a ShareX custom uploader).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    expand: Annotated[
        bool, typer.Option("--expand", help="Fill ${VAR} references from the environment (the file holds secrets).")
    ] = False,
    with_secrets: Annotated[
        bool,
        typer.Option("--with-secrets", help="Write secrets the host holds literally (default: a <VAR> placeholder)."),
    ] = False,
    hosts_dir: HostsDirOption = None,
) -> None:
    """Write a host in another tool's format, e.g. a ShareX custom uploader."""
    from ..exporters import sharex
    from ..hosts import SpecHost

    if as_format != "sxcu":
        fail(f"--as {as_format!r}: picbeam exports sxcu (ShareX custom uploaders)")
    for flag, wanted in (("--expand", expand), ("--with-secrets", with_secrets)):
        if wanted and output is None:
            fail(f"{flag} writes your secrets into the file: give it one with -o FILE (never stdout)")
    _, _, registry = open_hosts(hosts_dir)
    host = registry.get(name)
    if not isinstance(host, SpecHost):
        fail(f"host '{name}' is a {type(host).__name__} written in Python; only declarative hosts export to sxcu")
    document, warnings = sharex.export(host.spec, environ=os.environ if expand else None, with_secrets=with_secrets)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {output}")
    for line in warnings:
        warn(f"{name}: {line}")
