"""The dogecloud host: its token API on a loopback server that checks the TOKEN signature (computed as
DogeCloud documents it), then the files through moto's S3 with the temporary keys it handed out."""

from __future__ import annotations

import hashlib
import hmac
import json

from picbeam.testing import Reply, run_picbeam, write_host
from storage_servers import ALLOW_ALL, BUCKET

ACCESS, SECRET = "doge-access-0000", "doge-secret-9876"


def token_api(fake_host, s3_server, seen):
    import boto3

    key, secret = s3_server.writer
    options = {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1", "aws_access_key_id": key,
               "aws_secret_access_key": secret}  # fmt: skip
    iam = boto3.client("iam", **options)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                     "Action": "sts:AssumeRole"}]}  # fmt: skip
    try:
        role = iam.create_role(RoleName="doge", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName="doge", PolicyName="all", PolicyDocument=ALLOW_ALL)
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="doge")["Role"]
    sts = boto3.client("sts", **options)
    # Temporary keys with a session token, as DogeCloud's token API hands out (moto checks all three).
    temporary = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="picbeam")["Credentials"]

    def respond(request, host):
        expected = hmac.new(SECRET.encode(), f"{request.path}\n{request.body.decode()}".encode(), hashlib.sha1)
        if request.headers.get("Authorization") != f"TOKEN {ACCESS}:{expected.hexdigest()}":
            return Reply(json={"code": 10001, "msg": "ERROR_AUTH_FAILED"})
        seen.append(json.loads(request.body))
        return Reply(json={"code": 200, "msg": "OK", "data": {
            "Credentials": {"accessKeyId": temporary["AccessKeyId"], "secretAccessKey": temporary["SecretAccessKey"],
                            "sessionToken": temporary["SessionToken"]},
            "ExpiredAt": 9999999999,
            "Buckets": [{"name": "pics", "s3Bucket": BUCKET, "s3Endpoint": s3_server.endpoint}],
        }})  # fmt: skip

    fake_host.respond_with(respond)


def test_token_then_s3_upload_and_delete(fake_host, s3_server, hosts_dir, images):
    seen = []
    token_api(fake_host, s3_server, seen)
    write_host(hosts_dir, "doge", extends="dogecloud", bucket="pics", api=fake_host.url, path_style=True,
               path="doge/{name}{ext}", url_prefix="https://img.example.com/")  # fmt: skip
    paths = images(3)
    env = {"DOGECLOUD_ACCESS_KEY": ACCESS, "DOGECLOUD_SECRET_KEY": SECRET}
    done = run_picbeam("upload", *paths, "--host", "doge", "-j", "3", env=env)
    assert done.returncode == 0, done.stderr
    assert done.lines == [f"https://img.example.com/doge/{p.name}" for p in paths]
    assert seen == [{"channel": "OSS_FULL", "scopes": ["pics:*"]}]  # one token request for the run
    client = s3_server.client()
    for path in paths:
        assert client.get_object(Bucket=BUCKET, Key=f"doge/{path.name}")["Body"].read() == path.read_bytes()
    deleted = run_picbeam("delete", done.lines[0], env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert client.list_objects_v2(Bucket=BUCKET, Prefix=f"doge/{paths[0].name}").get("KeyCount") == 0


def test_wrong_secret_is_dogeclouds_message(fake_host, s3_server, hosts_dir, images):
    token_api(fake_host, s3_server, [])
    write_host(hosts_dir, "doge", extends="dogecloud", bucket="pics", api=fake_host.url,
               url_prefix="https://img.example.com/")  # fmt: skip
    [path] = images(1)
    env = {"DOGECLOUD_ACCESS_KEY": ACCESS, "DOGECLOUD_SECRET_KEY": "not-it-1234"}
    done = run_picbeam("upload", path, "--host", "doge", "--retries", "0", env=env)
    assert done.returncode == 1 and "DogeCloud refused the token request: ERROR_AUTH_FAILED" in done.stderr
    assert "not-it-1234" not in done.stderr
