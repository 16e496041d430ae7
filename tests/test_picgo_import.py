"""`picbeam hosts import` of a whole PicGo config.json: every configured uploader becomes its own host,
and each sends the request PicGo sends (the vendors' against loopback servers that check the signature
with the vendor SDK's algorithm)."""

from __future__ import annotations

from pathlib import Path

from picbeam.testing import run_picbeam

FILE = Path(__file__).parent / "data" / "importers" / "picgo-all.json"
ENV = {
    "PICGO_SMMS_TOKEN": "smms-token-111111", "PICGO_GITHUB_TOKEN": "ghp_picgotoken22222",
    "PICGO_IMGUR_CLIENTID": "imgur-client-33333",
    "PICGO_TCYUN_SECRETID": "AKIDpicbeamtest0000000000000000000", "PICGO_TCYUN_SECRETKEY": "cos-secret-key-9876",
    "PICGO_ALIYUN_ACCESSKEYID": "LTAI5tPicbeamTest00000", "PICGO_ALIYUN_ACCESSKEYSECRET": "oss-secret-key-9876",
    "PICGO_QINIU_ACCESSKEY": "qiniu-access-key-0000", "PICGO_QINIU_SECRETKEY": "qiniu-secret-key-9876",
    "PICGO_UPYUN_PASSWORD": "upyun-password-9876",
}  # fmt: skip
HOSTS = ["picgo-advancedplist", "picgo-aliyun", "picgo-github", "picgo-imgur", "picgo-qiniu", "picgo-smms",
         "picgo-tcyun", "picgo-upyun", "picgo-web-uploader"]  # fmt: skip


def imported(hosts_dir: Path) -> str:
    done = run_picbeam("hosts", "import", FILE, "--dir", hosts_dir)
    assert done.returncode == 1, done.stderr  # one section refused, the others written
    assert sorted(p.stem for p in hosts_dir.glob("*.toml")) == HOSTS
    [refused] = [line for line in done.stderr.splitlines() if "error:" in line]
    assert "picBed.lskyplist: not imported: picbeam has no mapping for PicGo's 'lskyplist' uploader" in refused
    written = "".join(p.read_text() for p in hosts_dir.glob("*.toml"))
    assert not [secret for secret in ENV.values() if secret in written + done.stdout + done.stderr]
    assert "secretKey is a credential: export PICGO_TCYUN_SECRETKEY=<the value of secretKey in picgo-all.json>" in (
        done.stderr
    )
    return done.stderr


def upload(path: Path, host: str, *overrides: str) -> str:
    """One upload through the public API (the import went through the command); the URL."""
    import os
    from unittest import mock

    import picbeam

    with mock.patch.dict(os.environ, ENV):
        [result] = picbeam.upload([path], host=host, overrides=list(overrides), force=True)
    assert result.ok, (host, result.error)
    return result.url


def test_every_builtin_sends_what_picgo_sends(
    hosts_dir,
    images,
    fake_host,
    cos_server,
    oss_server,
    qiniu_server,
    upyun_server,
):
    imported(hosts_dir)
    [path] = images(1)
    data = path.read_bytes()

    # tcyun v5: PUT /<path><name> on the bucket's address; URL customUrl/<path><name><options>
    url = upload(path, "picgo-tcyun", f"endpoint={cos_server.url}")
    assert cos_server.objects["blog/{raw}/img0000.png"] == data  # PicGo's path is literal text
    assert url == "https://img.example.com/blog/%7Braw%7D/img0000.png?imageMogr2/thumbnail/500x"
    # aliyun: the bucket's default address
    url = upload(path, "picgo-aliyun", f"endpoint={oss_server.url}")
    assert oss_server.objects["img/img0000.png"] == data and url == f"{oss_server.url}/img/img0000.png"
    # qiniu: form upload with a token for bucket:key; URL url/<path><name>
    url = upload(path, "picgo-qiniu", f"up_host={qiniu_server.url}")
    assert qiniu_server.objects["up/img0000.png"] == data and url == "https://qn.example.com/up/img0000.png"
    # upyun: PUT /<bucket>/<path><name>; URL url/<path><name><options>
    url = upload(path, "picgo-upyun", f"endpoint={upyun_server.url}")
    assert upyun_server.objects["u/img0000.png"] == data and url == "https://up.example.com/u/img0000.png!small"

    # The remote APIs and SM.MS, Imgur: the fake host records what arrives.
    fake_host.respond_with(lambda request, host: _answer(request))
    upload(path, "picgo-smms", f"endpoint={fake_host.endpoint('/api/v2/upload')}")
    upload(path, "picgo-imgur", f"endpoint={fake_host.endpoint('/3/image')}")
    url = upload(path, "picgo-web-uploader", f"endpoint={fake_host.endpoint('/api/upload')}")
    upload(path, "picgo-advancedplist", f"endpoint={fake_host.endpoint('/api/v1/upload')}")
    smms, imgur, web, advanced = fake_host.requests
    assert (smms.file.field, smms.headers["Authorization"]) == ("smfile", "smms-token-111111")
    assert (imgur.file.field, imgur.headers["Authorization"]) == ("image", "Client-ID imgur-client-33333")
    assert web.file.field == "image" and web.headers["Authorization"] == "Bearer web-token-444444"
    assert web.form == {"album": "Your Photos"}  # an ordinary value, not taken for a placeholder
    assert url == "https://files.example/web.png"
    assert advanced.file.field == "file" and advanced.headers["X-Api-Key"] == "adv-key-555555"
    assert advanced.form == {"folder": "{year}"}  # sent as written, as PicList does
    assert all(r.file.data == data for r in fake_host.requests)


def test_github_section(hosts_dir, images, github_server):
    from github_server import WRITE_TOKEN

    imported(hosts_dir)
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "picgo-github", "--set", f"api={github_server.api}",
                       env={**ENV, "PICGO_GITHUB_TOKEN": WRITE_TOKEN})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert github_server.repos["me/pics"].files("main")["img/img0000.png"] == path.read_bytes()


def test_only_picks_one(hosts_dir):
    done = run_picbeam("hosts", "import", FILE, "--dir", hosts_dir, "--only", "picgo-qiniu")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in hosts_dir.glob("*.toml")] == ["picgo-qiniu.toml"]
    shown = run_picbeam("hosts", "show", "picgo-qiniu", env=ENV).stdout
    assert 'region = "z2"' in shown and 'secret_key = "${PICGO_QINIU_SECRETKEY}"' in shown
    done = run_picbeam("hosts", "import", FILE, "--dir", hosts_dir, "--only", "picgo-nothing")
    assert done.returncode == 2 and "--only picgo-nothing: no such host" in done.stderr


def _answer(request):
    from picbeam.testing import Reply

    if request.path == "/api/upload":
        return Reply(json={"data": {"url": "https://files.example/web.png"}})
    if request.path == "/api/v1/upload":
        return Reply(json={"result": {"link": "https://files.example/adv.png"}})
    if request.path == "/3/image":
        return Reply(json={"data": {"link": "https://i.imgur.example/x.png", "deletehash": "d"}, "success": True})
    return Reply(json={"success": True, "data": {"url": "https://sm.example/x.png", "hash": "h"}})
