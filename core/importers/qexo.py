"""Qexo's image host settings: its whole export file (``{"settings": [{"name": "IMG_HOST"|"IMG_TYPE",
"content": ...}], ...}``), the ``IMG_HOST`` setting alone, or a provider's settings themselves.

Every Qexo provider maps: the remote API (``custom``/远程API: a multipart POST of ``post_params`` to ``api``
with ``custom_header`` and ``custom_body`` as JSON text, the URL at the dot path ``json_path`` behind
``custom_url``, and ``delete_url`` the dot path of a URL Qexo GETs to delete), ``s3``, ``github``, ``ftp``,
``alioss``, ``upyun_storage``, ``dogecloudoss`` and ``cfimgbed`` (to picbeam's own hosts). Qexo's ``path``
and ``prev_url`` are templates of their own (``{YEAR}``, ``{MONTH}``, ``{filename}``, ``{extName}``...);
credentials become ``${VAR}`` references with a note.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..templates import escape_braces
from .common import Imported, ImportRefused, Section, dotted_path, escape_env, host_name, remote_api_host

KEYS = {"api", "post_params"}
# Where Qexo keeps each part of a remote-API host.
SETTINGS = {"url": "api", "file_field": "post_params", "headers": "custom_header", "body": "custom_body",
            "prefix": "custom_url", "json_path": "json_path"}  # fmt: skip
# Qexo's provider names (module names and the names its settings page shows), compared in lower case.
PROVIDERS = {
    "custom": ("custom", "远程api", "remote api", "remote_api", "自定义"),
    "s3": ("s3", "s3协议"),
    "github": ("github",),
    "ftp": ("ftp", "ftp协议"),
    "alioss": ("alioss", "阿里云oss"),
    "upyun_storage": ("upyun_storage", "upyun", "又拍云-云储存"),
    "dogecloudoss": ("dogecloudoss",),
    "cfimgbed": ("cfimgbed",),
}
# Qexo's path placeholders (hexoweb/libs/image/replace.py) -> picbeam's; {year}, {month} and {day} are
# two-digit / unpadded there, which picbeam has no placeholder for (noted when used).
PLACEHOLDERS = {"{YEAR}": "{year}", "{MONTH}": "{month}", "{DAY}": "{day}", "{year}": "{year}", "{month}": "{month}",
                "{day}": "{day}", "{filename}": "{name}", ".{extName}": "{ext}", "{md5}": "{md5}",
                "{time}": "{timestamp}"}  # fmt: skip


def matches(data: Any) -> bool:
    return _found(data) is not None


def _found(data: Any, kind: str = "") -> tuple[str, Mapping[str, Any]] | None:
    """(provider, its settings) in any of the shapes Qexo keeps them; None when none is there. ``kind``
    is the IMG_TYPE setting next to IMG_HOST (which then holds the bare settings)."""
    if isinstance(data, Mapping) and isinstance(data.get("settings"), list):  # the whole export file
        return _found(data["settings"])
    if isinstance(data, list):
        named = {e.get("name"): e.get("content", e.get("value")) for e in data if isinstance(e, Mapping)}
        if "IMG_HOST" not in named:
            return None
        return _found({"IMG_HOST": named["IMG_HOST"], "IMG_TYPE": named.get("IMG_TYPE") or ""})
    if not isinstance(data, Mapping):
        return None
    if "IMG_HOST" in data:
        value = data["IMG_HOST"]
        try:
            value = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return None
        return _found(value, str(data.get("IMG_TYPE") or ""))
    if "params" in data and "type" in data:
        return str(data.get("type") or ""), data.get("params") or {}
    if set(data) >= KEYS or kind:
        return kind, data
    return None


def convert(data: Any, *, where: str, name: str | None = None) -> list[Imported]:
    found = _found(data)
    assert found is not None  # matches() said so
    kind, settings = found
    provider = next((p for p, names in PROVIDERS.items() if kind.strip().lower() in names), None)
    if kind == "" and set(settings) >= KEYS:
        provider = "custom"
    if provider is None:
        raise ImportRefused(
            f"{where}: not imported: Qexo's image host here is {kind!r}, which picbeam has no mapping for "
            f"(it imports: {', '.join(PROVIDERS)})",
            "unsupported",
        )
    return [MAPPERS[provider](settings, where, name)]


def _remote_api(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    if not settings.get("api") or not settings.get("post_params"):
        raise ImportRefused(f"{where}: not imported: api and post_params are both needed", "bad-config")
    name = name or host_name(str(settings["api"]).split("//")[-1].split("/")[0], "qexo")
    fields, notes = remote_api_host(
        settings, SETTINGS, name=name, description=f"{name} (imported from Qexo: {where})", where=where
    )
    if settings.get("delete_url"):
        if "url_path" not in fields:
            notes.append("delete_url left out: Qexo reads it from a JSON answer, and this one is text")
        else:
            # Qexo deletes with a plain GET of the URL it found at that path.
            fields.update(delete_path=dotted_path(str(settings["delete_url"])), delete_method="GET",
                          delete_endpoint="{delete_url}")  # fmt: skip
    return Imported(name, fields, notes)


class _Provider(Section):
    """One of Qexo's storage providers being imported."""

    tool = "Qexo"

    def __init__(self, kind: str, settings: Mapping[str, Any], where: str, name: str | None) -> None:
        super().__init__(settings, name or f"qexo-{kind}", where)

    def template(self, key: str, default: str) -> str:
        """A Qexo path template as picbeam's."""
        text = self.text(key, default)
        parts = re.split(r"(\.\{extName\}|\{[A-Za-z]+\})", text)
        if {"{year}", "{month}", "{day}"} & set(parts):
            self.notes.append(
                f"{key}: Qexo writes {{year}} with two digits and {{month}}/{{day}} unpadded; picbeam writes "
                f"2026/03/09 (use {{YEAR}}/{{MONTH}}/{{DAY}} there for the same)"
            )
        unknown = sorted({p for p in parts if p.startswith("{") and p not in PLACEHOLDERS})
        if unknown:
            raise ImportRefused(
                f"{self.where}: not imported: {key} uses {', '.join(unknown)}, which picbeam has no placeholder for",
                "unsupported",
            )
        return "".join(PLACEHOLDERS.get(p) or escape_braces(p) for p in parts).lstrip("/")

    def url_template(self, fields: dict[str, Any]) -> None:
        """Qexo's prev_url (the file's whole URL, a template) as url_template."""
        if self.text("prev_url"):
            fields["url_template"] = self.template("prev_url", "")


DEFAULT_PATH = "{YEAR}/{MONTH}/{md5}.{extName}"


def _s3(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    p = _Provider("s3", settings, where, name)
    fields = {"extends": "s3", "bucket": p.text("bucket"), "endpoint": escape_env(p.text("endpoint_url")),
              "region": p.text("region_name", "us-east-1"), "access_key_id": p.secret("key_id"),
              "secret_access_key": p.secret("access_key"), "path": p.template("path", DEFAULT_PATH)}  # fmt: skip
    p.url_template(fields)
    return p.done(fields, f"S3 {p.text('bucket')}")


def _github(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    p = _Provider("github", settings, where, name)
    fields = {"extends": "github", "repo": p.text("repo"), "branch": p.text("branch"), "token": p.secret("token"),
              "path": p.template("path", DEFAULT_PATH)}  # fmt: skip
    if p.text("url"):
        fields["url_template"] = p.template("url", "")
    return p.done(fields, f"GitHub {p.text('repo')}")


def _ftp(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    p = _Provider("ftp", settings, where, name)
    fields: dict[str, Any] = {"extends": "ftp", "host": p.text("host"), "username": p.text("user", "anonymous"),
                              "password": p.secret("password"), "path": p.template("path", DEFAULT_PATH)}  # fmt: skip
    if p.text("port") not in ("", "21"):
        fields["port"] = int(p.text("port"))
    p.url_template(fields)
    return p.done(fields, f"FTP {p.text('host')}")


def _alioss(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    p = _Provider("alioss", settings, where, name)
    endpoint = p.text("endpoint_url")
    host = urlsplit(endpoint if "//" in endpoint else f"https://{endpoint}").hostname or ""
    region = host.split(".")[0] if host.endswith(".aliyuncs.com") else ""
    fields = {"extends": "oss", "bucket": p.text("bucket"), "region": region or "oss-cn-hangzhou",
              "access_key_id": p.secret("access_id"), "access_key_secret": p.secret("access_key"),
              "path": p.template("path", DEFAULT_PATH)}  # fmt: skip
    if not region:
        p.notes.append(f"endpoint_url {endpoint!r} is not an aliyuncs.com endpoint: set 'region' and 'endpoint'")
    p.url_template(fields)
    return p.done(fields, f"Aliyun OSS {p.text('bucket')}")


def _upyun(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    p = _Provider("upyun", settings, where, name)
    fields = {"extends": "upyun", "bucket": p.text("service"), "operator": p.text("username"),
              "password": p.secret("password"), "path": p.template("path", DEFAULT_PATH)}  # fmt: skip
    p.url_template(fields)
    return p.done(fields, f"Upyun {p.text('service')}")


def _dogecloud(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    p = _Provider("dogecloud", settings, where, name)
    fields = {"extends": "dogecloud", "bucket": p.text("bucket"), "access_key": p.secret("access_key"),
              "secret_key": p.secret("secret_key"), "path": p.template("path", DEFAULT_PATH)}  # fmt: skip
    if p.text("endpoint_url"):
        p.notes.append("endpoint_url left out: the token API names the bucket's S3 endpoint itself")
    p.url_template(fields)
    if "url_template" not in fields:
        p.notes.append("prev_url (the bucket's domain) is empty: set url_prefix before uploading")
    return p.done(fields, f"DogeCloud {p.text('bucket')}")


def _cfimgbed(settings: Mapping[str, Any], where: str, name: str | None) -> Imported:
    p = _Provider("cfimgbed", settings, where, name)
    api = p.text("api").rstrip("/")
    site = api.removesuffix("/upload")
    if site == api:
        raise ImportRefused(
            f"{where}: not imported: api {api!r} is not an ImgBed upload address (…/upload)", "bad-config"
        )
    fields: dict[str, Any] = {"extends": "cfimgbed", "site": escape_env(site), "api_token": p.secret("api_key"),
                              "name_type": p.text("upload_name_type", "default"),
                              "path": p.template("upload_folder", "")}  # fmt: skip
    if p.text("custom_url"):
        fields["url_prefix"] = escape_env(p.text("custom_url"))
    if p.text("post_params", "file") != "file" or p.text("json_path", "0.src") != "0.src":
        p.notes.append("post_params/json_path differ from ImgBed's file and 0.src; picbeam uses ImgBed's")
    delete = p.text("delete_url").rstrip("/")
    if delete and delete != f"{site}/api/manage/delete":
        p.notes.append(f"delete_url {delete!r} is not {site}/api/manage/delete; picbeam deletes there")
    return p.done(fields, f"CloudFlare ImgBed {site}")


MAPPERS: dict[str, Callable[[Mapping[str, Any], str, str | None], Imported]] = {
    "custom": _remote_api, "s3": _s3, "github": _github, "ftp": _ftp, "alioss": _alioss, "upyun_storage": _upyun,
    "dogecloudoss": _dogecloud, "cfimgbed": _cfimgbed,
}  # fmt: skip
