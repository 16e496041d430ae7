"""The s3 presets: each builds its service's endpoint from its account/region fields, and one (MinIO's)
uploads to moto's S3 through the command."""

from __future__ import annotations

import pytest
from picbeam.testing import run_picbeam
from storage_servers import BUCKET, prepared

CASES = {
    "r2": ({"R2_ACCOUNT_ID": "abc123"}, "https://abc123.r2.cloudflarestorage.com", "auto"),
    "b2": ({"B2_REGION": "us-west-004"}, "https://s3.us-west-004.backblazeb2.com", "us-west-004"),
    "wasabi": ({"WASABI_REGION": "eu-central-1"}, "https://s3.eu-central-1.wasabisys.com", "eu-central-1"),
    "spaces": ({"SPACES_REGION": "fra1"}, "https://fra1.digitaloceanspaces.com", "fra1"),
    "minio": ({"MINIO_ENDPOINT": "https://minio.example:9000"}, "https://minio.example:9000", "us-east-1"),
}


@pytest.mark.parametrize("name", CASES)
def test_endpoint_from_the_account_and_region(name, monkeypatch):
    env, endpoint, region = CASES[name]
    for variable in (
        "R2_BUCKET",
        "B2_BUCKET",
        "WASABI_BUCKET",
        "SPACES_BUCKET",
        "MINIO_BUCKET",
        "R2_ACCESS_KEY_ID",
        "R2_SECRET_ACCESS_KEY",
        "B2_KEY_ID",
        "B2_APPLICATION_KEY",
        "WASABI_ACCESS_KEY_ID",
        "WASABI_SECRET_ACCESS_KEY",
        "SPACES_KEY",
        "SPACES_SECRET",
        "MINIO_ACCESS_KEY",
        "MINIO_SECRET_KEY",
    ):
        monkeypatch.setenv(variable, "x")  # fmt: skip
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    host = prepared(name)
    assert (host.endpoint, host.settings.region) == (endpoint, region)


def test_minio_preset_uploads(s3_server, images):
    [path] = images(1)
    key, secret = s3_server.writer
    env = {"MINIO_ENDPOINT": s3_server.endpoint, "MINIO_BUCKET": BUCKET, "MINIO_ACCESS_KEY": key,
           "MINIO_SECRET_KEY": secret}  # fmt: skip
    done = run_picbeam("upload", path, "--host", "minio", "--set", "path=m/{name}{ext}", env=env)
    assert done.lines == [f"{s3_server.endpoint}/{BUCKET}/m/img0000.png"], done.stderr
    assert s3_server.client().get_object(Bucket=BUCKET, Key="m/img0000.png")["Body"].read() == path.read_bytes()
