"""Hosts: the Host base class, the declarative SpecHost, and the registry of every host a run can use."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urljoin

from .errors import ConfigError, PluginError, UploadError
from .items import UploadItem, UploadResult, printable
from .redaction import MASK
from .spec import HostSpec, parse_assignments, query_keys

if TYPE_CHECKING:
    import aiohttp


class Host:
    """A host implemented in code, for what one request shape cannot describe.

    Subclasses set ``name`` (and may set the limits below) and implement :meth:`upload`. The engine
    passes the run's single ``aiohttp.ClientSession``; raise :class:`~picbeam.UploadError` on failure
    (``transient=True`` when another attempt may succeed). A host configurable from a hosts.d file
    (``extends = "myhost"``) overrides :meth:`configured`.
    """

    name: str = ""
    description: str = ""
    max_bytes: int | None = None
    concurrency: int | None = None
    rate_limit: float | None = None
    # MIME patterns the host takes ("image/*"); empty means any file.
    accept: tuple[str, ...] = ()
    source: str = "python"
    # The URL schemes this host's URLs may have; any other fails the file (a storage host adds its own,
    # such as "file" for local).
    url_schemes: ClassVar[tuple[str, ...]] = ("http", "https")
    # The hosts.d fields (or --set values) this host was configured with: see configured().
    options: Mapping[str, Any] = {}
    # Option names whose values are credentials: masked in `hosts show`, redacted from every message and
    # warned about when written literally in a readable hosts.d file. A name is looked up in
    # ``self.options``, else as an attribute of the host.
    secret_options: ClassVar[tuple[str, ...]] = ()
    # The plugin that registered this host (set by the registry): named when the host fails unexpectedly.
    plugin: str = ""
    # The host's [process] table: processing options for uploads to it (see picbeam.processing).
    process: Mapping[str, Any] = {}
    # True when upload() reads the file only through ``item.open()``, once per attempt: a big file whose
    # metadata is stripped is then streamed through the stripper instead of copied first.
    streams_files: bool = False
    # True when upload() does not need ``item.sha256`` before the file is sent (nothing is named or signed
    # by content): a big file is then hashed in a thread while it is sent, not read once more first.
    # Reading ``item.sha256`` stays correct either way; it waits for the hash.
    hash_while_sending: ClassVar[bool] = False
    # Hosts that every upload to this one also goes to (a hosts.d file's `mirrors = [...]`).
    mirrors: tuple[str, ...] = ()

    @property
    def destination(self) -> str:
        """Where uploads land (an endpoint, a bucket, a folder): the ledger's dedupe key with the name,
        so the same file sent to a mirror or another bucket is a new upload."""
        return self.name

    async def upload(self, item: UploadItem, session: aiohttp.ClientSession) -> UploadResult:
        """Send ``item`` and return its result (at least ``url``)."""
        raise NotImplementedError

    async def delete(self, record: Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        """Remove a file this host stored; ``record`` is what the ledger kept about the upload."""
        raise UploadError(f"host '{self.name}' has no delete API")

    async def finish(self, session: aiohttp.ClientSession) -> None:
        """Called once after a run's last upload, with the run's session still open: a host that batches
        its uploads completes the batch here (GitHub: one commit), one that keeps a connection (SFTP)
        closes it. Raise :class:`~picbeam.UploadError` when the batch could not be completed."""

    def configured(self, name: str, options: Mapping[str, Any], *, source: str) -> Host:
        """A new host named ``name`` from this one with ``options`` (a hosts.d file's fields) applied."""
        raise ConfigError(f"{source}: host '{self.name}' cannot be extended (it takes no options)")

    def prepared(self) -> Host:
        """The host ready for a run: environment references expanded, options checked."""
        return self

    def describe(self) -> dict[str, Any]:
        """What `hosts show` prints: name, kind, description and ``options``, secrets masked (``${VAR}``
        references shown as written)."""
        from .redaction import ENV_REFERENCE, MASK

        out: dict[str, Any] = {"name": self.name, "description": self.description, "kind": type(self).__name__}
        for key, value in self.options.items():
            secret = key in self.secret_options and value and not ENV_REFERENCE.search(str(value))
            out.setdefault(key, MASK if secret else value)
        return out

    def secret_values(self) -> list[str]:
        """Credential values to redact from any output of a run: those of ``secret_options``."""
        values = []
        for name in self.secret_options:
            value = self.options.get(name) if name in self.options else getattr(self, name, None)
            if value:
                values.append(str(value))
        return values

    def timeout(self, size: int, read_timeout: float | None = None) -> Any:
        """The ``aiohttp.ClientTimeout`` picbeam uses for sending ``size`` bytes: connect within 15 s,
        never stall on a read for more than ``read_timeout`` (default 60 s), and time for the size."""
        return request_timeout(size, read_timeout)

    def request_preview(self, item: UploadItem) -> dict[str, Any] | None:
        """What the upload request for ``item`` would carry, for ``--dry-run`` (secrets masked), or None
        for a host whose requests are not one HTTP request per file."""
        return None

    def result(self, item: UploadItem, url: str, **fields: Any) -> UploadResult:
        """An UploadResult for ``item`` carrying the URL this host produced."""
        return UploadResult(
            path=printable(item.source),
            host=self.name,
            url=url,
            bytes=item.size,
            index=item.index,  # the engine stamps the content's hash: it may still be being computed
            **fields,
        )


class SpecHost(Host):
    """A host described by a :class:`HostSpec`: one HTTP request per file, one JMESPath over the answer."""

    streams_files = True
    hash_while_sending = True

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = spec.description
        self.max_bytes = spec.max_bytes
        self.concurrency = spec.concurrency
        self.rate_limit = spec.rate_limit
        self.accept = tuple(spec.accept)
        self.source = spec.source
        self.process = spec.process
        self.mirrors = tuple(spec.mirrors)
        self._has_secrets = bool(spec.secret_values())  # asked of every request (the redirect guard)

    @property
    def destination(self) -> str:
        return self.spec.endpoint

    def configured(self, name: str, options: Mapping[str, Any], *, source: str) -> Host:
        return SpecHost(self.spec.derive(options, source=source, name=name))

    def prepared(self) -> Host:
        return SpecHost(self.spec.expanded())

    def describe(self) -> dict[str, Any]:
        return self.spec.masked()

    def secret_values(self) -> list[str]:
        return self.spec.secret_values()

    def request_preview(self, item: UploadItem) -> dict[str, Any] | None:
        from urllib.parse import urlencode

        from .redaction import mask_table, mask_url
        from .templates import TemplateContext

        spec = self.spec
        request = spec.request_for(TemplateContext.of(item))
        query = mask_table(request.query, spec.secrets)
        url = mask_url(request.endpoint, spec.secrets)
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query, safe="*")
        preview: dict[str, Any] = {"method": spec.method, "url": url, "body": spec.body}
        if spec.body == "multipart":
            preview.update(file_field=spec.file_field, form=mask_table(request.form, spec.secrets))
        preview.update(file_name=item.name, mime=item.mime, headers=mask_table(request.headers, spec.secrets))
        return preview

    async def upload(self, item: UploadItem, session: aiohttp.ClientSession) -> UploadResult:
        import aiohttp

        from .answers import interpret, read_answer
        from .templates import TemplateContext, fill_placeholders, has_placeholders

        spec = self.spec
        context = TemplateContext.of(item)
        request = spec.request_for(context)
        # A URL that names the file (https://host/{filename}) is this file's.
        prefix = (
            fill_placeholders(spec.url_prefix, context, quote_values=True)
            if has_placeholders(spec.url_prefix)
            else None
        )
        headers = request.headers
        body: Any
        if spec.body == "binary":
            body = item.open()
            headers.setdefault("Content-Type", item.mime)
        else:
            # Unquoted names, as browsers send them: percent-encoding would reach PHP hosts as "a%20b.png".
            body = aiohttp.FormData(quote_fields=False)
            for key, value in request.form.items():
                body.add_field(key, value)
            body.add_field(spec.file_field, item.open(), filename=item.name, content_type=item.mime)
        async with session.request(
            spec.method,
            request.endpoint,
            params=request.query or None,
            headers=headers,
            data=body,
            timeout=request_timeout(item.size, spec.timeout),
            middlewares=self._redirect_guard(request.endpoint),
        ) as response:
            answer = await read_answer(response, spec.max_answer_size)
            extracted = interpret(spec, response.status, response.headers, answer, str(response.url), prefix)
        return self.result(
            item,
            extracted.url,
            thumbnail_url=extracted.thumbnail_url,
            delete_url=extracted.delete_url,
            status=response.status,
            answer=extracted.data,
            endpoint=spec.endpoint,
        )

    def _redirect_guard(self, url: str) -> tuple[Any, ...]:
        """For a host with credentials: redirects stay on the endpoint's origin. aiohttp drops only the
        Authorization header on the way to another origin; keys in other headers, the form, the query or
        the URL would all go along."""
        return (same_origin_only(url),) if self._has_secrets else ()

    async def delete(self, record: Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        from .answers import http_error, parse_body, read_answer, search

        spec = self.spec
        if not spec.delete_endpoint:
            page = record.get("delete_url")
            hint = f"; delete it by hand at {page}" if page else ""
            raise UploadError(f"host '{self.name}' has no delete API{hint}")
        answer = record.get("answer")
        recorded = record.get("endpoint")
        # The ledger keeps the endpoint with its credentials masked: then the host's own has them.
        base = recorded if recorded and MASK not in recorded else spec.endpoint
        target = urljoin(base, fill_from_answer(spec.delete_endpoint, answer, record=record))
        form = {k: fill_from_answer(v, answer, record=record, quoted=False) for k, v in spec.delete_form.items()}
        async with session.request(
            spec.delete_method or "DELETE",
            target,
            params={k: v for k, v in spec.query.items() if k not in query_keys(target)} or None,
            headers=spec.headers,
            data=form or None,
            timeout=request_timeout(0, spec.timeout),
            middlewares=self._redirect_guard(target),
        ) as response:
            body = await read_answer(response, spec.max_answer_size)
        data = _try(lambda: parse_body("json", body, response.status))
        if not 200 <= response.status < 300:
            raise http_error(response.status, response.headers, body, search(spec, "error_path", data))
        if isinstance(data, dict) and spec.expression("success_path") and not search(spec, "success_path", data):
            raise UploadError(f"delete refused: {search(spec, 'error_path', data) or 'the host reported a failure'}")


def same_origin_only(endpoint: str) -> Any:
    """An aiohttp client middleware (it sees every hop of a redirect) that refuses to send the request to
    an origin other than ``endpoint``'s."""
    from yarl import URL

    origin = URL(endpoint).origin()

    async def middleware(request: Any, handler: Any) -> Any:
        target = request.url.origin()
        if target != origin:
            raise UploadError(
                f"the host redirected the request to another origin, {target}, and picbeam does not send the "
                f"host's credentials there; if uploads belong there, point endpoint at it"
            )
        return await handler(request)

    return middleware


def keep_process(old: Host, new: Host) -> Host:
    """``new``, a host made from ``old`` (configured, prepared), with ``old``'s ``[process]`` table under
    its own and ``old``'s plugin: a code host's ``configured()`` and ``prepared()`` need not know them."""
    if new is not old and old.process:
        new.process = {**old.process, **new.process}
    if new is not old and not new.plugin:  # the code is still that plugin's
        new.plugin = old.plugin
    return new


def _literal(value: Any) -> bool:
    from .redaction import ENV_REFERENCE

    return isinstance(value, str) and len(value) >= 6 and not ENV_REFERENCE.search(value)


# What a delete template may name from the upload's record besides its answer.
RECORD_NAMES = ("url", "delete_url", "url_name")


def fill_from_answer(
    template: str, answer: Any, *, record: Mapping[str, Any] | None = None, quoted: bool = True
) -> str:
    """Fill ``{jmespath}`` placeholders (``delete/{data.hash}``) from a recorded answer, URL-quoted unless
    ``quoted`` is false (a form value). With ``record``, ``{url}`` and ``{delete_url}`` are the upload's URLs
    (inserted as they are) and ``{url_name}`` the last segment of its URL's path."""
    import jmespath

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if record is not None and name in RECORD_NAMES:
            url = str(record.get("delete_url" if name == "delete_url" else "url") or "")
            if not url:
                raise UploadError(f"the record has no {name}, so the delete request cannot be built")
            if name == "url_name":
                return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            return url
        found = jmespath.search(name, answer) if answer is not None else None
        if found is None or found == "":
            raise UploadError(f"the recorded answer has no '{name}', so the delete request cannot be built")
        return quote(str(found), safe="") if quoted else str(found)

    return re.sub(r"\{([^{}]+)\}", value, template)


def _try(call: Any) -> Any:
    try:
        return call()
    except UploadError:
        return None


def request_timeout(size: int, read_timeout: float | None = None) -> Any:
    """Timeouts for one upload: connect quickly, never stall on a read, and allow time for the size.

    ``total`` assumes a slow 256 KiB/s link so a large file is not cut off while still sending.
    """
    import aiohttp

    stall = read_timeout or 60.0
    return aiohttp.ClientTimeout(total=stall + size / (256 * 1024), sock_connect=15.0, sock_read=stall)


@dataclass
class HostDraft:
    """A hosts.d file that says ``extends = "other"``: completed once every plugin has registered."""

    name: str
    extends: str
    changes: dict[str, Any]
    source: str


@dataclass
class BrokenHost:
    """A host that exists but could not be loaded (a hosts.d file with an error): using it says why."""

    name: str
    error: str


@dataclass
class HostEntry:
    host: Host
    plugin: str


# The plugin that reads hosts.d folders: its hosts replace other plugins' hosts of the same name.
FILES_PLUGIN = "hosts_folder"


class HostRegistry:
    """Every host of a run, by name, with the plugin that provided it and any host that failed to load."""

    def __init__(self) -> None:
        self._entries: dict[str, HostEntry] = {}
        self.drafts: list[tuple[HostDraft, str]] = []
        # Host name -> one-line error, for host files that could not be read.
        self._broken: dict[str, str] = {}
        # Host name -> warnings worth a line when a command uses or lists that host (a literal secret).
        self.warnings: dict[str, list[str]] = {}
        self.on_warning: Callable[[str], None] = lambda message: None
        # Set while some plugins have not registered their hosts yet (a one-file upload names one host):
        # ``more(name)`` brings in the plugins that may define host ``name``, ``more(None)`` all of them
        # (and completes the drafts). See picbeam.loader.Hooks.register_hosts.
        self.more: Callable[[str | None], None] | None = None

    @property
    def entries(self) -> dict[str, HostEntry]:
        """Every host, by name (all plugins registered first)."""
        self.complete()
        return self._entries

    @property
    def broken(self) -> dict[str, str]:
        """Host name -> why it could not be loaded (all plugins registered first)."""
        self.complete()
        return self._broken

    def defines(self, name: str) -> bool:
        """Whether host ``name`` is registered (or known to be broken) so far."""
        return name in self._entries or name in self._broken

    def complete(self) -> None:
        """Let every plugin still to be asked register its hosts."""
        if self.more is not None:
            self.more(None)

    def settle(self, name: str, seen: frozenset[str] = frozenset()) -> None:
        """Make host ``name`` final without asking every plugin: its hosts.d draft completed from its base
        (itself settled first), else the plugins that may define it asked (see :attr:`more`)."""
        if self.more is None or name in self._broken:
            return
        draft = next((pair for pair in self.drafts if pair[0].name == name), None)
        if draft is None:
            if name not in self._entries:
                self.more(name)
            return
        if name in seen:  # a cycle of extends: complete_drafts names it
            self.complete()
            return
        base = draft[0].extends
        if base == name:  # customises a plugin's host of the same name: that plugin's host comes first
            if name not in self._entries:
                self.more(name)
        else:
            self.settle(base, seen | {name})
        if self.more is None or draft not in self.drafts:  # everything was completed meanwhile
            return
        self.drafts.remove(draft)
        try:
            self._complete(*draft)
        except ConfigError as exc:
            self._broken[name] = str(exc)

    def warn_about(self, name: str, message: str) -> None:
        """Keep a warning about host ``name``, said when a command uses or lists it."""
        if message not in self.warnings.setdefault(name, []):
            self.warnings[name].append(message)

    def say_warnings(self, name: str) -> None:
        for message in self.warnings.get(name, ()):
            self.on_warning(message)

    def register(self, item: HostSpec | Host | HostDraft | BrokenHost, plugin: str) -> None:
        if isinstance(item, HostDraft):
            self.drafts.append((item, plugin))
            return
        if isinstance(item, BrokenHost):
            self._broken[item.name] = item.error
            return
        host = SpecHost(item) if isinstance(item, HostSpec) else item
        if not isinstance(host, Host):
            raise PluginError(f"register() takes a HostSpec or a Host, not {type(item).__name__}")
        if not host.name:
            raise PluginError(f"{type(host).__name__} has no name")
        if not host.plugin:
            host.plugin = plugin
        existing = self._entries.get(host.name)
        if existing is not None and (plugin == FILES_PLUGIN) != (existing.plugin == FILES_PLUGIN):
            # The user's hosts.d file customises a plugin's host of the same name, whichever registered first.
            if plugin == FILES_PLUGIN:
                self._entries[host.name] = HostEntry(host, plugin)
            return
        if existing is not None:
            raise ConfigError(
                f"host name '{host.name}' is defined twice: by {existing.plugin} ({existing.host.source}) "
                f"and by {plugin} ({host.source}); rename one of them"
            )
        self._entries[host.name] = HostEntry(host, plugin)

    def complete_drafts(self) -> None:
        """Build every ``extends`` host from its base, in dependency order."""
        pending = list(self.drafts)
        self.drafts = []
        while pending:
            progressed = False
            for draft, plugin in list(pending):
                if draft.extends in {d.name for d, _ in pending if d is not draft and d.name != draft.extends}:
                    continue  # its base is itself a draft not built yet
                pending.remove((draft, plugin))
                progressed = True
                try:
                    self._complete(draft, plugin)
                except ConfigError as exc:
                    self._broken[draft.name] = str(exc)
            if not progressed:
                for draft, _ in pending:
                    self._broken[draft.name] = f"{draft.source}: 'extends' forms a cycle through '{draft.extends}'"
                break

    def _complete(self, draft: HostDraft, plugin: str) -> None:
        base = self._entries.get(draft.extends)
        if base is None:
            reason = self._broken.get(draft.extends, "no such host")
            raise ConfigError(f"{draft.source}: extends '{draft.extends}': {reason}")
        changes = dict(draft.changes)
        table = None if isinstance(base.host, SpecHost) else changes.pop("process", None)
        mirrors = None if isinstance(base.host, SpecHost) else changes.pop("mirrors", None)
        host = base.host.configured(draft.name, changes, source=draft.source)
        if mirrors is not None:  # like [process], the same field for every host, not a code host's option
            if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
                raise ConfigError(f"{draft.source}: field 'mirrors' must be a list of host names")
            host.mirrors = tuple(mirrors)
        host = keep_process(base.host, host)
        from .redaction import literal_secret_warning

        literal = [key for key in base.host.secret_options if _literal(changes.get(key))]
        warning = literal_secret_warning(draft.source, literal)
        if warning:
            self.warn_about(draft.name, warning)
        if table is not None:  # a code host's options do not include [process]: it is the same for every host
            from .processing import check_options

            host.process = {**host.process, **check_options(table, f"{draft.source} [process]")}
        if draft.name == draft.extends:  # a file that customises a host of the same name replaces it
            del self._entries[draft.name]
        self.register(host, plugin)

    def get(self, name: str) -> Host:
        self.settle(name)
        if name in self._broken:  # a broken file of a plugin host's name must not silently fall back to it
            raise ConfigError(self._broken[name])
        if name in self._entries:
            self.say_warnings(name)
            return self._entries[name].host
        import difflib  # for a mistyped name only

        close = difflib.get_close_matches(name, list(self._entries), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; `picbeam hosts list` shows them"
        raise ConfigError(f"unknown host '{name}'{hint}")

    def select(self, name: str, overrides: Sequence[str] | Mapping[str, Any] = ()) -> Host:
        """The host to use for a run, with ``--set FIELD=VALUE`` overrides applied."""
        host = self.get(name)
        changes = overrides if isinstance(overrides, Mapping) else parse_assignments(overrides)
        return keep_process(host, host.configured(name, changes, source="--set")) if changes else host

    def names(self) -> list[str]:
        return sorted(self.entries)
