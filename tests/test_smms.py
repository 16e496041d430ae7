"""The SM.MS preset against a loopback host that answers as SM.MS documents."""

from __future__ import annotations

import json

import pytest
from picbeam.testing import Reply, run_picbeam

SUCCESS = {
    "success": True,
    "code": "success",
    "message": "Upload success.",
    "data": {
        "file_id": 0,
        "width": 4,
        "height": 4,
        "filename": "img0000.png",
        "storename": "D5VpWCKFElUsPcR.png",
        "size": 100,
        "path": "/2019/12/16/D5VpWCKFElUsPcR.png",
        "hash": "Q6vLIbCGZojrMhO2e7BmgFuXRV",
        "url": "https://vip1.loli.net/2019/12/16/D5VpWCKFElUsPcR.png",
        "delete": "https://sm.ms/delete/Q6vLIbCGZojrMhO2e7BmgFuXRV",
        "page": "https://sm.ms/image/D5VpWCKFElUsPcR",
    },
    "RequestId": "8A84DDCA-96B3-4363-B5DF-524E95A5201A",
}
TOKEN = "smms-token-0123456789abcdef"


@pytest.fixture
def smms(fake_host, monkeypatch):
    monkeypatch.setenv("SMMS_TOKEN", TOKEN)
    return ["--host", "smms", "--set", f"endpoint={fake_host.endpoint('/api/v2/upload')}"]


def test_success(fake_host, smms, images):
    fake_host.reply(json=SUCCESS)
    [path] = images(1)
    done = run_picbeam("upload", path, *smms, "--format", "json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["url"] == SUCCESS["data"]["url"]
    assert record["delete_url"] == SUCCESS["data"]["delete"]
    [request] = fake_host.requests
    assert request.path == "/api/v2/upload"
    assert request.headers["Authorization"] == TOKEN
    assert request.file.field == "smfile" and request.file.data == path.read_bytes()
    assert request.form == {"format": "json"}


def test_image_repeated_is_a_success(fake_host, smms, images):
    fake_host.reply(
        json={
            "success": False,
            "code": "image_repeated",
            "message": "Image upload repeated limit, this image exists at: https://i.loli.net/a.png",
            "images": "https://i.loli.net/a.png",
            "RequestId": "X",
        }
    )
    [path] = images(1)
    done = run_picbeam("upload", path, *smms)
    assert done.returncode == 0, done.stderr
    assert done.lines == ["https://i.loli.net/a.png"]


def test_error_answer_is_reported(fake_host, smms, images):
    fake_host.reply(json={"success": False, "code": "flood", "message": "Flood detected, try again later."})
    [path] = images(1)
    done = run_picbeam("upload", path, *smms)
    assert done.returncode == 1
    assert f"{path}: smms: rejected: Flood detected, try again later." in done.stderr


def test_unauthorized_never_echoes_the_token(fake_host, smms, images):
    fake_host.reply(Reply(status=401, json={"success": False, "message": f"Invalid token {TOKEN}"}))
    [path] = images(1)
    done = run_picbeam("upload", path, *smms)
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


def test_missing_token_is_a_clear_error_and_sends_nothing(fake_host, smms, images, monkeypatch):
    monkeypatch.delenv("SMMS_TOKEN")
    [path] = images(1)
    done = run_picbeam("upload", path, *smms)
    assert done.returncode == 2
    assert "host 'smms': environment variable SMMS_TOKEN is not set (used in headers.Authorization)" in done.stderr
    assert fake_host.requests == []


def test_size_limit_is_checked_before_sending(fake_host, smms, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024 + 1))
    done = run_picbeam("upload", big, *smms)
    assert done.returncode == 1
    assert "over the host's limit of 5.0 MB" in done.stderr
    assert fake_host.requests == []
