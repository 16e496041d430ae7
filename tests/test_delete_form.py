"""`delete_form`: presets whose delete API takes a form body (0x0.st, catbox, Lsky Pro 1) delete through
`picbeam delete`, sending what the host's API wants."""

from __future__ import annotations

from urllib.parse import parse_qs

from picbeam.testing import Reply, run_picbeam


def upload_then_delete(fake_host, path, host, env=None, endpoint="/api/upload"):
    done = run_picbeam("upload", path, "--host", host, "--set", f"endpoint={fake_host.endpoint(endpoint)}",
                       env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    [url] = done.lines
    deleted = run_picbeam("delete", url, env=env)
    assert deleted.returncode == 0, deleted.stderr
    _upload, delete = fake_host.requests
    return url, delete, {k: v[0] for k, v in parse_qs(delete.body.decode(), keep_blank_values=True).items()}


def test_0x0_posts_the_token_to_the_file(fake_host, images):
    [path] = images(1)
    fake_host.script([Reply(text=f"{fake_host.url}/AbC.png\n", headers={"X-Token": "tok-0x0-1234"}), Reply(text="")])
    _url, delete, form = upload_then_delete(fake_host, path, "0x0")
    assert (delete.method, delete.path) == ("POST", "/AbC.png") and form == {"token": "tok-0x0-1234", "delete": ""}


def test_catbox_deletes_by_file_name_with_the_userhash(fake_host, images):
    [path] = images(1)
    fake_host.script([Reply(text="https://files.catbox.moe/x1y2z3.png"), Reply(text="Files successfully deleted.")])
    _, delete, form = upload_then_delete(
        fake_host, path, "catbox", env={"CATBOX_USERHASH": "hash-5678"}, endpoint="/user/api.php"
    )
    assert (delete.method, delete.path) == ("POST", "/user/api.php")
    assert form == {"reqtype": "deletefiles", "userhash": "hash-5678", "files": "x1y2z3.png"}


def test_lsky1_posts_the_image_id(fake_host, images):
    [path] = images(1)
    answer = {"code": 200, "msg": "ok", "data": {"id": 42, "url": "https://lsky.example/i/a.png"}}
    fake_host.script([Reply(json=answer), Reply(json={"code": 200, "msg": "deleted"})])
    env = {"LSKY1_URL": fake_host.url, "LSKY1_TOKEN": "lsky-token-9999"}
    _, delete, form = upload_then_delete(fake_host, path, "lsky1", env=env)
    assert (delete.method, delete.path, form) == ("POST", "/api/delete", {"id": "42"})
    assert delete.headers["token"] == "lsky-token-9999"
