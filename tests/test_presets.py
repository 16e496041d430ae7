"""Every bundled preset against a loopback host that answers as the real host documents: the exact
request on the wire (path, field names, headers, query, form), the documented success answer, and the
documented error answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import picbeam
import pytest
from picbeam import ConfigError
from picbeam.config import Config
from picbeam.loader import load_plugins
from picbeam.testing import Reply, run_picbeam

CHEVERETO_IMAGE = {
    "name": "example", "extension": "png", "size": 53237, "width": 1151, "height": 808,
    "md5": "c684350d722c956c362ab70299735830", "original_filename": "img0000.png", "id_encoded": "L",
    "filename": "example.png", "mime": "image/png", "url": "https://img.example/images/2024/06/04/example.png",
    "url_viewer": "https://img.example/image/L",
    "thumb": {"filename": "example.th.png", "url": "https://img.example/images/2024/06/04/example.th.png"},
    "delete_url": "https://img.example/image/L/delete/9a4f0d",
}  # fmt: skip
CHEVERETO_ERROR = {
    "status_code": 400,
    "error": {"message": "Duplicated upload", "code": 101},
    "status_txt": "Bad Request",
}


@dataclass
class Preset:
    """One preset: how to reach it, the answers its host documents, and the request it must send."""

    name: str
    path: str
    env: dict[str, str]
    success: Reply
    url: str
    error: Reply
    error_text: str
    file_field: str = "file"
    form: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    thumbnail_url: str | None = None
    delete_url: str | None = None


PRESETS = [
    Preset(
        "see", "/api/v1/file/upload", {"SEE_API_KEY": "see-key-0123456789"},
        Reply(json={"code": 200, "data": {"file_id": 14184137, "width": 4, "height": 4, "filename": "img0000.png",
                                          "storename": "img0000.png", "size": 90,
                                          "path": "/2026/02/11/dm3K/img0000.png",
                                          "hash": "delete-hash-here", "url": "https://i.see.you/2026/02/11/dm3K/img0000.png",
                                          "delete": "https://s.ee/api/v1/file/delete/delete-hash-here",
                                          "page": "https://sm.ms/img0000", "upload_status": 2},
                    "message": "success", "success": True}),
        "https://i.see.you/2026/02/11/dm3K/img0000.png",
        Reply(json={"code": "unauthorized", "message": "Invalid API key", "success": False}),
        "rejected: Invalid API key",
        file_field="smfile", headers={"Authorization": "see-key-0123456789"},
        delete_url="https://s.ee/api/v1/file/delete/delete-hash-here",
    ),
    Preset(
        "imgur", "/3/image", {"IMGUR_CLIENT_ID": "c1d2e3f4a5b6c7"},
        Reply(json={"data": {"id": "orunSTu", "title": None, "description": None, "datetime": 1495556889,
                             "type": "image/png", "animated": False, "width": 4, "height": 4, "size": 90,
                             "account_id": 0, "deletehash": "x70po4w7BVvSUBs", "name": "",
                             "link": "https://i.imgur.com/orunSTu.png"}, "success": True, "status": 200}),
        "https://i.imgur.com/orunSTu.png",
        Reply(status=400, json={"data": {"error": {"code": 1003, "message": "File type invalid (1)",
                                                   "type": "ImgurException", "exception": []},
                                         "request": "/3/image", "method": "POST"}, "success": False, "status": 400}),
        "HTTP 400: File type invalid (1)",
        file_field="image", form={"type": "file"}, headers={"Authorization": "Client-ID c1d2e3f4a5b6c7"},
    ),
    Preset(
        "imgur-bearer", "/3/image", {"IMGUR_CLIENT_ID": "unused", "IMGUR_ACCESS_TOKEN": "tok-0a1b2c3d4e5f"},
        Reply(json={"data": {"id": "Xy12Abc", "deletehash": "DelHash0001", "link": "https://i.imgur.com/Xy12Abc.png"},
                    "success": True, "status": 200}),
        "https://i.imgur.com/Xy12Abc.png",
        Reply(status=403, json={"data": {"error": "The access token provided is invalid.", "request": "/3/image",
                                         "method": "POST"}, "success": False, "status": 403}),
        "HTTP 403: The access token provided is invalid.",
        file_field="image", form={"type": "file"}, headers={"Authorization": "Bearer tok-0a1b2c3d4e5f"},
    ),
    Preset(
        "imgbb", "/1/upload", {"IMGBB_KEY": "imgbb-key-456789"},
        Reply(json={"data": {"id": "2ndCYJK", "title": "c1f64245afb2", "url_viewer": "https://ibb.co/2ndCYJK",
                             "url": "https://i.ibb.co/w04Prt6/c1f64245afb2.gif",
                             "display_url": "https://i.ibb.co/98W13PY/c1f64245afb2.gif", "width": "1", "height": "1",
                             "size": "42", "time": "1552042565", "expiration": "0",
                             "thumb": {"filename": "c1f64245afb2.gif", "url": "https://i.ibb.co/2ndCYJK/c1f64245afb2.gif"},
                             "delete_url": "https://ibb.co/2ndCYJK/670a7e48ddcb85ac340c717a41047e5c"},
                    "success": True, "status": 200}),
        "https://i.ibb.co/w04Prt6/c1f64245afb2.gif",
        Reply(status=400, json={"status_code": 400, "error": {"message": "Empty upload source.", "code": 130,
                                                              "context": "Exception"}, "status_txt": "Bad Request"}),
        "HTTP 400: Empty upload source.",
        file_field="image", query={"key": "imgbb-key-456789"},
        thumbnail_url="https://i.ibb.co/2ndCYJK/c1f64245afb2.gif",
        delete_url="https://ibb.co/2ndCYJK/670a7e48ddcb85ac340c717a41047e5c",
    ),
    Preset(
        "chevereto", "/api/1/upload", {"CHEVERETO_URL": "https://img.example", "CHEVERETO_API_KEY": "chv-key-778899"},
        Reply(json={"status_code": 200, "success": {"message": "image uploaded", "code": 200},
                    "image": CHEVERETO_IMAGE, "status_txt": "OK"}),
        CHEVERETO_IMAGE["url"],
        Reply(status=400, json=CHEVERETO_ERROR),
        "HTTP 400: Duplicated upload",
        file_field="source", form={"format": "json"}, headers={"X-API-Key": "chv-key-778899"},
        thumbnail_url=CHEVERETO_IMAGE["thumb"]["url"], delete_url=CHEVERETO_IMAGE["delete_url"],
    ),
    Preset(
        "lsky", "/api/v1/upload", {"LSKY_URL": "https://lsky.example", "LSKY_TOKEN": "1|lskytoken0123"},
        Reply(json={"status": True, "message": "上传成功", "data": {
            "key": "Y8Bx1D", "name": "a1b2.png", "pathname": "2024/01/01/a1b2.png", "origin_name": "img0000.png",
            "size": 0.09, "mimetype": "image/png", "extension": "png", "md5": "d41d8c", "sha1": "da39a3",
            "links": {"url": "https://lsky.example/i/2024/01/01/a1b2.png", "html": "<img>", "bbcode": "[img]",
                      "markdown": "![]()", "markdown_with_link": "[![]()]()",
                      "thumbnail_url": "https://lsky.example/thumbnails/a1b2.png",
                      "delete_url": "https://lsky.example/image/delete/Y8Bx1D"}}}),
        "https://lsky.example/i/2024/01/01/a1b2.png",
        Reply(json={"status": False, "message": "上传失败: 文件类型不被允许", "data": {}}),
        "rejected: 上传失败: 文件类型不被允许",
        headers={"Authorization": "Bearer 1|lskytoken0123", "Accept": "application/json"},
        thumbnail_url="https://lsky.example/thumbnails/a1b2.png", delete_url="https://lsky.example/image/delete/Y8Bx1D",
    ),
    Preset(
        "lsky1", "/api/upload", {"LSKY1_URL": "https://lsky1.example", "LSKY1_TOKEN": "lsky1-token-55aa"},
        Reply(json={"code": 200, "msg": "上传成功", "data": {"name": "img0000.png", "url": "https://lsky1.example/i/x.png",
                                                            "size": 90, "mime": "image/png"}, "time": 1573200000}),
        "https://lsky1.example/i/x.png",
        Reply(json={"code": 500, "msg": "token 无效", "data": {}, "time": 1573200000}),
        "rejected: token 无效",
        file_field="image", headers={"token": "lsky1-token-55aa"},
    ),
    Preset(
        "catbox", "/user/api.php", {},
        Reply(text="https://files.catbox.moe/abc123.png"), "https://files.catbox.moe/abc123.png",
        Reply(status=412, text="No files given."), "HTTP 412: No files given.",
        file_field="fileToUpload", form={"reqtype": "fileupload"},
    ),
    Preset(
        "litterbox", "/resources/internals/api.php", {},
        Reply(text="https://litter.catbox.moe/q0w9e8.png"), "https://litter.catbox.moe/q0w9e8.png",
        Reply(text="Invalid time given."), "the answer is not a URL: Invalid time given.",
        file_field="fileToUpload", form={"reqtype": "fileupload", "time": "1h"},
    ),
    Preset(
        "0x0", "/", {},
        Reply(text="https://0x0.st/XyZ1.png\n", headers={"X-Token": "mgmt-token"}), "https://0x0.st/XyZ1.png",
        Reply(status=451, text="Unavailable For Legal Reasons"), "HTTP 451: Unavailable For Legal Reasons",
        delete_url="mgmt-token",  # the X-Token a delete sends back (tests/test_delete_form.py)
    ),
    Preset(
        "uguu", "/upload", {},
        Reply(json={"success": True, "files": [{"hash": "1a2b", "name": "img0000.png",
                                                "url": "https://d.uguu.se/AbCdEf.png", "size": 90, "dupe": False}]}),
        "https://d.uguu.se/AbCdEf.png",
        Reply(status=400, json={"success": False, "errorcode": 400, "description": "No input file(s)"}),
        "HTTP 400: No input file(s)",
        file_field="files[]", query={"output": "json"},
    ),
    Preset(
        "cloudinary", "/v1_1/demo/image/upload", {"CLOUDINARY_CLOUD": "demo", "CLOUDINARY_PRESET": "unsigned_blog"},
        Reply(json={"asset_id": "3515c6000a548515f1134043f9785c2f", "public_id": "gotjephlnz2jgiu20zni",
                    "version": 1719307544, "width": 4, "height": 4, "format": "png", "resource_type": "image",
                    "created_at": "2024-06-25T09:25:44Z", "tags": [], "bytes": 90, "type": "upload",
                    "url": "http://res.cloudinary.com/demo/image/upload/v1719307544/gotjephlnz2jgiu20zni.png",
                    "secure_url": "https://res.cloudinary.com/demo/image/upload/v1719307544/gotjephlnz2jgiu20zni.png",
                    "delete_token": "2ba33fb0f4", "original_filename": "img0000"}),
        "https://res.cloudinary.com/demo/image/upload/v1719307544/gotjephlnz2jgiu20zni.png",
        Reply(status=400, json={"error": {"message": "Upload preset not found"}}),
        "HTTP 400: Upload preset not found",
        form={"upload_preset": "unsigned_blog", "return_delete_token": "true"},
    ),
    Preset(
        "freeimage", "/api/1/upload", {},
        Reply(json={"status_code": 200, "success": {"message": "image uploaded", "code": 200},
                    "image": {**CHEVERETO_IMAGE, "url": "https://iili.io/JQ1b2Fe.png",
                              "thumb": {"url": "https://iili.io/JQ1b2Fe.th.png"}}, "status_txt": "OK"}),
        "https://iili.io/JQ1b2Fe.png",
        Reply(status=400, json={"status_code": 400, "error": {"message": "Invalid API v1 key.", "code": 100},
                                "status_txt": "Bad Request"}),
        "HTTP 400: Invalid API v1 key.",
        file_field="source", form={"key": "6d207e02198a847aa98d0a2a901485a5", "action": "upload", "format": "json"},
        thumbnail_url="https://iili.io/JQ1b2Fe.th.png", delete_url=CHEVERETO_IMAGE["delete_url"],
    ),
]  # fmt: skip
IDS = [p.name for p in PRESETS]


@pytest.fixture
def preset_env(monkeypatch):
    def apply(preset: Preset) -> None:
        for name, value in preset.env.items():
            monkeypatch.setenv(name, value)

    return apply


@pytest.mark.parametrize("preset", PRESETS, ids=IDS)
def test_success_answer_and_the_request_on_the_wire(preset, fake_host, preset_env, images):
    preset_env(preset)
    fake_host.reply(preset.success)
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", preset.name, "--set", f"endpoint={fake_host.endpoint(preset.path)}",
                       "--format", "json", env=preset.env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (record["url"], record["thumbnail_url"], record["delete_url"]) == (
        preset.url, preset.thumbnail_url, preset.delete_url,
    )  # fmt: skip
    [request] = fake_host.requests
    assert request.method == "POST" and request.path == preset.path
    assert request.query == preset.query
    assert request.form == preset.form
    assert request.file.field == preset.file_field
    assert request.file.filename == path.name and request.file.data == path.read_bytes()
    for name, value in preset.headers.items():
        assert request.headers[name] == value
    assert request.headers["User-Agent"].startswith("picbeam/")


@pytest.mark.parametrize("preset", PRESETS, ids=IDS)
def test_error_answer_is_one_clear_line(preset, fake_host, preset_env, images):
    preset_env(preset)
    fake_host.reply(preset.error)
    [path] = images(1)
    [result] = picbeam.upload([path], host=preset.name, overrides=[f"endpoint={fake_host.endpoint(preset.path)}"])
    assert not result.ok
    assert preset.error_text in result.error
    for secret in preset.env.values():
        if len(secret) >= 6:
            assert secret not in result.error


EXPECTED_DELETE = {
    "smms": ("GET", "delete/{data.hash}"),
    "see": ("GET", "delete/{data.hash}"),
    "imgur": ("DELETE", "image/{data.deletehash}"),
    "imgur-bearer": ("DELETE", "image/{data.deletehash}"),
    "lsky": ("DELETE", "images/{data.key}"),
    # A form body (delete_form): tests/test_delete_form.py.
    "lsky1": ("POST", "delete"),
    "0x0": ("POST", "{url}"),
    "catbox": ("POST", "api.php"),
    "cloudinary": ("POST", "https://api.cloudinary.com/v1_1/${CLOUDINARY_CLOUD}/delete_by_token?token={delete_token}"),
}


def test_every_preset_loads_with_its_limits_and_delete_declaration():
    registry = load_plugins().hosts(Config.load())
    assert not registry.broken, registry.broken
    for preset in PRESETS:
        spec = registry.get(preset.name).spec
        assert spec.description
        assert (spec.delete_method, spec.delete_endpoint) == EXPECTED_DELETE.get(preset.name, (None, None))
        # Keys never hide in the endpoint, so that `--set endpoint=` (a mirror, a self-hosted site) keeps them.
        assert "?" not in spec.endpoint and "key" not in spec.endpoint.lower()
    sizes = {name: registry.get(name).spec.max_bytes for name in IDS}
    assert sizes["litterbox"] == 1024**3 and sizes["0x0"] == 512 * 1024**2 and sizes["imgbb"] == 32 * 1024**2


@pytest.mark.parametrize(
    ("name", "variable"), [("see", "SEE_API_KEY"), ("lsky", "LSKY_URL"), ("cloudinary", "CLOUDINARY_CLOUD")]
)
def test_a_missing_variable_is_named_and_nothing_is_sent(name, variable, fake_host, images, monkeypatch):
    for other in ("SEE_API_KEY", "LSKY_URL", "LSKY_TOKEN", "CLOUDINARY_CLOUD", "CLOUDINARY_PRESET"):
        monkeypatch.delenv(other, raising=False)
    registry = load_plugins().hosts(Config.load())
    assert variable in registry.get(name).description
    [path] = images(1)
    with pytest.raises(ConfigError, match=f"host '{name}': environment variable {variable} is not set"):
        picbeam.upload([path], host=name)
    assert fake_host.requests == []
