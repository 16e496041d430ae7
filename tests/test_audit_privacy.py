"""Nothing leaked: secrets on redirects, secrets in every encoding, answers without a limit."""

from __future__ import annotations

import pytest
from picbeam.testing import FakeHost, Reply, run_picbeam, write_host


@pytest.fixture(scope="module")
def elsewhere():
    """Another origin, where a hostile endpoint redirects uploads."""
    with FakeHost() as other:
        yield other


@pytest.fixture
def no_retry_wait():
    assert run_picbeam("config", "set", "retry_wait", "0.01").returncode == 0


@pytest.mark.parametrize(("where", "status"), [("headers", 307), ("form", 302), ("query", 308), ("userinfo", 307)])
def test_a_request_with_a_secret_is_not_redirected_to_another_origin(
    fake_host, elsewhere, hosts_dir, images, no_retry_wait, status, where
):
    before = len(elsewhere.requests)
    fake_host.reply(Reply(status=status, headers={"Location": elsewhere.endpoint("/landing?from=redirect")}))
    secret = "QQQsecretQ+/=9z"
    fields: dict = {"endpoint": fake_host.endpoint(), "url_path": "data.url"}
    if where == "userinfo":
        fields["endpoint"] = fake_host.endpoint().replace("http://", f"http://uploader:{secret.replace('/', '%2F')}@")
    else:
        fields[where] = {"X-API-Key" if where == "headers" else "api_key": secret}
    write_host(hosts_dir, "hostile", **fields)
    done = run_picbeam("upload", images(1)[0], "--host", "hostile")
    assert done.returncode == 1
    assert len(elsewhere.requests) == before  # nothing reached the other origin
    [line] = [line for line in done.stderr.splitlines() if "redirect" in line]
    assert elsewhere.url in line and "endpoint" in line, line
    assert "Traceback" not in done.stderr
    assert len(fake_host.requests) == 1  # not retried


def test_a_same_origin_redirect_is_followed(fake_host, hosts_dir, images, no_retry_wait):
    def moved(request, host):
        if request.path == "/upload":
            return Reply(status=307, headers={"Location": "/v2/upload"})
        return host.default_reply(request)

    fake_host.respond_with(moved)
    write_host(hosts_dir, "moved", endpoint=fake_host.endpoint(), url_path="data.url", headers={"X-API-Key": "k" * 20})
    done = run_picbeam("upload", images(1)[0], "--host", "moved")
    assert done.returncode == 0, done.stderr
    assert [r.path for r in fake_host.requests] == ["/upload", "/v2/upload"]
    assert fake_host.requests[1].headers["X-API-Key"] == "k" * 20
    assert fake_host.requests[1].file.data
