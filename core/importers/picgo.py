"""PicGo and PicList configurations: every configured uploader of a ``config.json`` (PicGo-Core, PicList)
or ``data.json`` (the PicGo 2.x app) becomes its own host, named ``picgo-<uploader>``.

PicGo keeps the uploader in use under ``picBed.<type>`` and, since 2.4, every named configuration of a
type under ``uploader.<type>.configList``. Built-ins map to picbeam's own hosts (``tcyun`` -> ``cos``,
``aliyun`` -> ``oss``, ``qiniu``, ``upyun``, ``github``, ``smms``, ``imgur``), PicList's ``webdavplist``,
``sftpplist``, ``local`` and the S3 uploaders (PicList's ``aws-s3-plist``, picgo-plugin-s3's ``aws-s3``)
to ``webdav``, ``sftp``, ``local`` and ``s3``; ``web-uploader`` and PicList's ``advancedplist`` are remote
APIs. Credentials never stay in the host file: each becomes a ``${VAR}`` reference and a note says which
variable to export. A section picbeam has no mapping for is refused by name.

PicGo's ``path`` is a folder the file's own name goes under, its URL ``customUrl/path/name`` followed by
``options`` (an image-processing suffix such as ``?imageMogr2/thumbnail/500x``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..templates import escape_braces
from . import common
from .common import Imported, ImportRefused, escape_env, host_name, remote_api_host

KEYS = {"url", "paramName"}
# picBed keys that are not uploaders.
NOT_UPLOADERS = {"uploader", "current", "proxy", "transformer", "list"}
# COS's old region names (PicGo's tcyun v4 "area") and the regions they are now (COS "regions and
# endpoints", 旧地域名称).
COS_V4_REGIONS = {"tj": "ap-beijing-1", "bj": "ap-beijing", "sh": "ap-shanghai", "gz": "ap-guangzhou",
                  "cd": "ap-chengdu", "sgp": "ap-singapore", "hk": "ap-hongkong", "ca": "na-toronto",
                  "ger": "eu-frankfurt"}  # fmt: skip


def matches(data: Any) -> bool:
    return isinstance(data, dict) and ("picBed" in data or set(data) >= KEYS)


class Section(common.Section):
    """One uploader configuration of a PicGo config."""

    tool = "PicGo"

    def __init__(self, kind: str, config: Mapping[str, Any], name: str, where: str) -> None:
        super().__init__(config, name, where)
        self.kind = kind

    def folder(self, key: str = "path") -> str:
        """PicGo's folder setting as PicGo normalises it: no leading '/', one trailing '/' (or empty)."""
        value = self.text(key).strip("/")
        return f"{value}/" if value else ""

    def path_template(self, key: str = "path") -> str:
        """The picbeam path template for PicGo's folder + the file's own name."""
        return escape_braces(self.folder(key)) + "{filename}"

    def url_fields(self, base: str, suffix: str = "", web_path_key: str = "") -> dict[str, str]:
        """``url_prefix`` (or ``url_template`` when a suffix or web path is set) for PicGo's URL:
        ``base/<path><name><suffix>``."""
        base = base.rstrip("/")
        web = self.folder(web_path_key) if web_path_key else ""
        if not base:
            return {}
        if suffix or web:
            path = escape_braces(web) + "{filename}" if web else "{path}"
            return {"url_template": f"{escape_braces(base)}/{path}{escape_braces(suffix)}"}
        return {"url_prefix": f"{base}/"}


def convert(data: Mapping[str, Any], *, where: str, name: str | None = None) -> list[Imported | ImportRefused]:
    sections = _sections(data, where)
    if name and len(sections) > 1:
        names = ", ".join(section.name for section in sections)
        raise ImportRefused(f"{where}: holds {len(sections)} uploaders ({names}); pick one with --only", "bad-config")
    results: list[Imported | ImportRefused] = []
    for section in sections:
        if name:
            section.name = name
        mapper = MAPPERS.get(section.kind)
        try:
            if mapper is None:
                raise ImportRefused(
                    f"{where}: picBed.{section.kind}: not imported: picbeam has no mapping for PicGo's "
                    f"'{section.kind}' uploader (it imports: {', '.join(sorted(MAPPERS))})",
                    "unsupported",
                )
            results.append(mapper(section))
        except ImportRefused as refused:
            results.append(refused)
    return results


def _sections(data: Mapping[str, Any], where: str) -> list[Section]:
    """Every configured uploader: the named configurations of ``uploader.<type>.configList``, then the
    ``picBed.<type>`` ones not among them."""
    if set(data) >= KEYS:  # one web uploader's settings alone
        return [Section("web-uploader", data, host_name(data.get("_configName"), "picgo-web-uploader"), where)]
    found: list[tuple[str, Mapping[str, Any]]] = []
    for kind, entry in sorted((data.get("uploader") or {}).items()):
        listed = entry.get("configList") if isinstance(entry, Mapping) else None
        found.extend((kind, c) for c in listed or () if isinstance(c, Mapping) and _configured(c))
    for kind, config in (data.get("picBed") or {}).items():
        if kind in NOT_UPLOADERS or not isinstance(config, Mapping) or not _configured(config):
            continue
        if not any(k == kind and _same(c, config) for k, c in found):
            found.append((kind, config))
    if not found:
        raise ImportRefused(f"{where}: not imported: no uploader is configured in this PicGo config", "bad-config")
    counts: dict[str, int] = {}
    for kind, _ in found:
        counts[kind] = counts.get(kind, 0) + 1
    sections = []
    for kind, config in found:
        label = config.get("_configName")
        several = counts[kind] > 1 and label and str(label).lower() not in ("default", "默认配置")
        sections.append(Section(kind, config, host_name(f"picgo-{kind}" + (f"-{label}" if several else "")), where))
    return sections


def _configured(config: Mapping[str, Any]) -> bool:
    """A section the user filled in (PicGo writes empty sections for uploaders never set up)."""
    return any(v not in (None, "", False, {}, []) for k, v in config.items() if not k.startswith("_"))


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    strip = re.compile(r"^_")
    return {k: v for k, v in a.items() if not strip.match(k)} == {k: v for k, v in b.items() if not strip.match(k)}


# -- the uploaders --------------------------------------------------------------------------------------
def _web_uploader(section: Section) -> Imported:
    config = section.config
    if not config.get("url") or not config.get("paramName"):
        raise ImportRefused(
            f"{section.where}: picBed.web-uploader: not imported: url and paramName (the file's form field) "
            f"are both needed",
            "bad-config",
        )
    label = config.get("_configName") or section.name
    fields, notes = remote_api_host(config, WEB_UPLOADER, name=section.name,
                                    description=f"{label} (imported from PicGo: {section.where})",
                                    where=section.where)  # fmt: skip
    return Imported(section.name, fields, notes)


# Where PicGo's web-uploader and PicList's advancedplist keep each part of a remote-API host.
WEB_UPLOADER = {"url": "url", "file_field": "paramName", "headers": "customHeader", "body": "customBody",
                "prefix": "customPrefix", "json_path": "jsonPath"}  # fmt: skip
ADVANCED = {"url": "endpoint", "file_field": "formDataKey", "headers": "headers", "body": "body",
            "prefix": "customPrefix", "json_path": "resDataPath"}  # fmt: skip


def _advanced(section: Section) -> Imported:
    config = dict(section.config)
    where = f"{section.where}: picBed.advancedplist"
    if section.text("uploadScriptName"):
        raise ImportRefused(f"{where}: not imported: it runs an upload script, which picbeam cannot", "unsupported")
    if not section.text("endpoint"):
        raise ImportRefused(f"{where}: not imported: endpoint is empty", "bad-config")
    config.setdefault("formDataKey", "file")
    config["formDataKey"] = config["formDataKey"] or "file"
    config["resDataPath"] = config.get("resDataPath") or "data.url"  # PicList's default
    fields, notes = remote_api_host(config, ADVANCED, name=section.name,
                                    description=f"PicList custom uploader (imported from PicGo: {section.where})",
                                    where=section.where)  # fmt: skip
    method = section.text("method", "POST").upper()
    if method != "POST":
        fields["method"] = method
    if section.text("webPath"):
        notes.append("webPath left out: picbeam keeps the URL the answer gives (PicList puts webPath before its "
                     "last segment); set url_prefix or change url_path by hand")  # fmt: skip
    return Imported(section.name, fields, notes)


def _smms(section: Section) -> Imported:
    fields: dict[str, Any] = {"extends": "smms", "headers": {"Authorization": section.secret("token")}}
    if section.text("backupDomain"):
        fields["endpoint"] = escape_env(f"https://{section.text('backupDomain')}/api/v2/upload")
    return section.done(fields, "SM.MS")


def _imgur(section: Section) -> Imported:
    if section.text("accessToken"):
        fields = {"extends": "imgur-bearer", "headers": {"Authorization": f"Bearer {section.secret('accessToken')}"}}
    else:
        fields = {"extends": "imgur", "headers": {"Authorization": f"Client-ID {section.secret('clientId')}"}}
    if section.text("album"):
        fields["form"] = {"album": escape_braces(section.text("album"))}
    if section.text("proxy"):
        section.notes.append("proxy left out: set HTTPS_PROXY when you run picbeam")
    return section.done(fields, "Imgur")


def _github(section: Section) -> Imported:
    fields = {
        "extends": "github",
        "repo": section.text("repo"),
        "branch": section.text("branch"),
        "token": section.secret("token"),
        "path": section.path_template(),
        **section.url_fields(section.text("customUrl")),
    }
    return section.done(fields, f"GitHub {section.text('repo')}")


def _tcyun(section: Section) -> Imported:
    bucket, area = section.text("bucket"), section.text("area")
    fields: dict[str, Any] = {"extends": "cos", "secret_id": section.secret("secretId"),
                              "secret_key": section.secret("secretKey"), "path": section.path_template()}  # fmt: skip
    if section.text("version", "v4") == "v4":
        fields.update(bucket=bucket, app_id=section.text("appId"), region=COS_V4_REGIONS.get(area, area))
        section.notes.append(
            "PicGo's tcyun v4 uses COS's retired JSON API; picbeam writes to the same bucket through the XML API "
            f"(bucket {bucket}-{section.text('appId')}, region {fields['region']})"
        )
    else:
        fields.update(bucket=bucket, region=area)
    endpoint = section.text("endpoint")
    if endpoint:
        fields["endpoint"] = escape_env(f"https://{bucket}.{endpoint}")
    options = section.text("options")
    suffix = options + ("&imageSlim" if options else "?imageSlim") if section.config.get("slim") else options
    base = section.text("customUrl") or (f"https://{bucket}.{endpoint}" if endpoint else "")
    if base:
        fields.update(section.url_fields(base, suffix, "webPath"))
    elif suffix:
        fields["url_template"] = "https://{bucket}.cos.{region}.myqcloud.com/{path}" + escape_braces(suffix)
    return section.done(fields, f"Tencent COS {bucket}")


def _aliyun(section: Section) -> Imported:
    fields = {"extends": "oss", "bucket": section.text("bucket"), "region": section.text("area"),
              "access_key_id": section.secret("accessKeyId"), "access_key_secret": section.secret("accessKeySecret"),
              "path": section.path_template()}  # fmt: skip
    suffix = section.text("options")
    base = section.text("customUrl")
    if not base and suffix:
        fields["url_template"] = "https://{bucket}.{region}.aliyuncs.com/{path}" + escape_braces(suffix)
    fields.update(section.url_fields(base, suffix, "webPath"))
    return section.done(fields, f"Aliyun OSS {section.text('bucket')}")


def _qiniu(section: Section) -> Imported:
    url = section.text("url")
    if url and not re.match(r"https?://", url):
        url = f"http://{url}"  # PicGo's own default when the domain is given bare
    fields = {"extends": "qiniu", "bucket": section.text("bucket"), "region": section.text("area", "z0"),
              "access_key": section.secret("accessKey"), "secret_key": section.secret("secretKey"),
              "path": section.path_template(), **section.url_fields(url, section.text("options"))}  # fmt: skip
    if not url:
        section.notes.append("url (the bucket's domain) is empty: set url_prefix before uploading")
    return section.done(fields, f"Qiniu Kodo {section.text('bucket')}")


def _upyun(section: Section) -> Imported:
    fields = {"extends": "upyun", "bucket": section.text("bucket"), "operator": section.text("operator"),
              "password": section.secret("password"), "path": section.path_template(),
              **section.url_fields(section.text("url"), section.text("options"))}  # fmt: skip
    if section.text("endpoint"):
        endpoint = section.text("endpoint")
        fields["endpoint"] = escape_env(endpoint if re.match(r"https?://", endpoint) else f"https://{endpoint}")
    return section.done(fields, f"Upyun {section.text('bucket')}")


def _webdav(section: Section) -> Imported:
    host = re.sub(r"^https?://|/+$", "", section.text("host"))
    scheme = "https" if section.config.get("sslEnabled") else "http"
    fields = {"extends": "webdav", "endpoint": escape_env(f"{scheme}://{host}"), "username": section.text("username"),
              "password": section.secret("password"), "path": section.path_template(),
              **section.url_fields(section.text("customUrl"), web_path_key="webpath")}  # fmt: skip
    return section.done(fields, f"WebDAV {host}")


def _sftp(section: Section) -> Imported:
    fields: dict[str, Any] = {"extends": "sftp", "host": section.text("host"), "username": section.text("username"),
                              "root": "/" + section.folder("uploadPath").rstrip("/"), "path": "{filename}",
                              **section.url_fields(section.text("customUrl"), web_path_key="webPath")}  # fmt: skip
    if section.text("port") not in ("", "22"):
        fields["port"] = int(section.text("port"))
    if section.text("password"):
        fields["password"] = section.secret("password")
    if section.text("privateKey"):
        fields["key_file"] = section.text("privateKey")
        if section.text("passphrase"):
            fields["passphrase"] = section.secret("passphrase")
    for left in ("fileUser", "fileMode", "dirMode"):
        if section.text(left):
            section.notes.append(f"{left} left out: picbeam does not change owners or modes")
    return section.done(fields, f"SFTP {section.text('host')}")


def _local(section: Section) -> Imported:
    fields = {"extends": "local", "root": section.text("path"), "path": "{filename}",
              **section.url_fields(section.text("customUrl"), web_path_key="webPath")}  # fmt: skip
    return section.done(fields, "a local folder")


# picgo-plugin-s3's and PicList's uploadPath placeholders -> picbeam's.
S3_PLACEHOLDERS = {"{fullName}": "{filename}", "{fileName}": "{name}", ".{extName}": "{ext}", "{md5}": "{md5}",
                   "{sha256}": "{sha256}", "{year}": "{year}", "{month}": "{month}", "{day}": "{day}",
                   "{hour}": "{hour}", "{minute}": "{minute}", "{second}": "{second}",
                   "{timestamp}": "{timestamp}"}  # fmt: skip


def _s3(section: Section) -> Imported:
    pattern = section.text("uploadPath", "{year}/{month}/{md5}.{extName}")
    parts = re.split(r"(\.\{extName\}|\{[A-Za-z0-9]+\})", pattern)
    unknown = sorted({p for p in parts if p.startswith("{") and p not in S3_PLACEHOLDERS})
    if unknown:
        raise ImportRefused(
            f"{section.where}: picBed.{section.kind}: not imported: uploadPath uses {', '.join(unknown)}, "
            f"which picbeam has no placeholder for",
            "unsupported",
        )
    path = "".join(S3_PLACEHOLDERS.get(p) or escape_braces(p) for p in parts)
    endpoint = section.text("endpoint")
    if endpoint and not re.match(r"https?://", endpoint):
        endpoint = f"https://{endpoint}"
    fields: dict[str, Any] = {
        "extends": "s3", "bucket": section.text("bucketName"), "region": section.text("region", "us-east-1"),
        "endpoint": escape_env(endpoint), "access_key_id": section.secret("accessKeyID"),
        "secret_access_key": section.secret("secretAccessKey"), "path": path.lstrip("/"),
        "acl": section.text("acl"),
    }  # fmt: skip
    if section.config.get("pathStyleAccess"):
        fields["path_style"] = True
    if section.text("urlPrefix"):
        fields["url_prefix"] = section.text("urlPrefix").rstrip("/") + "/"
    return section.done(fields, f"S3 {section.text('bucketName')}")


MAPPERS: dict[str, Callable[[Section], Imported]] = {
    "web-uploader": _web_uploader, "advancedplist": _advanced, "smms": _smms, "imgur": _imgur, "github": _github,
    "tcyun": _tcyun, "aliyun": _aliyun, "qiniu": _qiniu, "upyun": _upyun, "webdavplist": _webdav,
    "sftpplist": _sftp, "local": _local, "aws-s3": _s3, "aws-s3-plist": _s3,
}  # fmt: skip

__all__ = ["MAPPERS", "convert", "matches"]
