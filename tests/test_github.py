"""The github host against a loopback server with GitHub's API semantics (tests/github_server.py)."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import aiohttp
import picbeam
from github_server import READ_TOKEN, WRITE_TOKEN, api_error
from picbeam.errors import AlreadyGone
from picbeam.testing import run_picbeam, write_host
from storage_servers import failure_line, prepared, shows_masked, upload_batch

COMMITS = "POST /api/v3/repos/{owner}/{name}/git/commits"
BLOBS = "POST /api/v3/repos/{owner}/{name}/git/blobs"
REF_UPDATES = "PATCH /api/v3/repos/{owner}/{name}/git/refs/heads/{branch}"


def gh_host(hosts_dir, server, name="gh", **fields):
    fields = {"extends": "github", "repo": "me/pics", "api": server.api, "url_template": server.raw_url(), **fields}
    write_host(hosts_dir, name, **fields)


def test_batch_of_100_is_one_commit_and_identical_files_are_not_sent_again(github_server, hosts_dir, images):
    gh_host(hosts_dir, github_server, path="img/{year}/{month}/{name}-{sha256:8}{ext}")
    env = {"GITHUB_TOKEN": WRITE_TOKEN}
    paths, records, elapsed = upload_batch(images, "gh", env)
    assert github_server.calls[COMMITS] == 1 and github_server.calls[BLOBS] == 100
    repo = github_server.repos["me/pics"]
    files = repo.files("main")
    folder = f"img/{time.strftime('%Y')}/{time.strftime('%m')}"
    for record, path in zip(records, paths, strict=True):
        assert files[f"{folder}/{path.stem}-{record['sha256'][:8]}.png"] == path.read_bytes()
        with urllib.request.urlopen(record["url"]) as answer:  # the URL serves the committed file
            assert answer.read() == path.read_bytes()
    assert "README.md" in files  # the commit adds to the branch; it does not replace it
    assert repo.commits[repo.refs["main"]]["message"] == "Upload 100 file(s) with picbeam"

    again = run_picbeam("upload", paths[0].parent, "--host", "gh", "-j", "8", env=env)
    assert again.returncode == 0, again.stderr
    assert github_server.calls[COMMITS] == 1 and github_server.calls[BLOBS] == 100  # nothing sent, no commit
    assert again.lines == [record["url"] for record in records]
    print(f"github: 100 images in {elapsed:.1f}s, {github_server.calls[COMMITS]} commit")


def test_a_branch_that_moved_during_the_run_is_committed_on_again(github_server, hosts_dir, images):
    gh_host(hosts_dir, github_server, path="{name}{ext}")
    github_server.before_ref_update = lambda repo: repo.commit_on("main", {"other.txt": b"theirs"}, "someone else")
    paths = images(3)
    done = run_picbeam("upload", *paths, "--host", "gh", env={"GITHUB_TOKEN": WRITE_TOKEN})
    assert done.returncode == 0, done.stderr
    files = github_server.repos["me/pics"].files("main")
    assert files["other.txt"] == b"theirs"  # their commit is kept...
    assert all(files[p.name] == p.read_bytes() for p in paths)  # ...and ours is on top of it
    assert github_server.calls[REF_UPDATES] == 2


def test_throttling_and_server_errors_are_retried(github_server, hosts_dir, images):
    throttled = (403, "You have exceeded a secondary rate limit.", {"Retry-After": "0"})
    github_server.failures[BLOBS] = [throttled]
    github_server.failures[COMMITS] = [(502, "Server Error", {})]
    gh_host(hosts_dir, github_server, path="{name}{ext}")
    paths = images(2)
    done = run_picbeam("upload", *paths, "--host", "gh", env={"GITHUB_TOKEN": WRITE_TOKEN})
    assert done.returncode == 0, done.stderr
    assert github_server.calls[BLOBS] == 3 and github_server.calls[COMMITS] == 2
    assert all(github_server.repos["me/pics"].files("main")[p.name] == p.read_bytes() for p in paths)


def test_cdn_urls_default_branch_and_delete(github_server, hosts_dir, images, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", WRITE_TOKEN)
    github_server.repos["me/pics"].default_branch = "main"
    write_host(
        hosts_dir, "gh", extends="github", repo="me/pics", api=github_server.api, cdn="jsdelivr", path="p/{name}{ext}"
    )
    [path] = images(1)
    [result] = picbeam.upload([path], host="gh")
    assert result.ok, result.error
    assert result.url == "https://cdn.jsdelivr.net/gh/me/pics@main/p/img0000.png"
    repo = github_server.repos["me/pics"]
    assert repo.files("main")["p/img0000.png"] == path.read_bytes()

    async def delete():
        host = prepared("gh")
        async with aiohttp.ClientSession() as session:
            await host.delete({"url": result.url, "answer": result.answer, "endpoint": result.endpoint}, session)

    asyncio.run(delete())
    assert "p/img0000.png" not in repo.files("main") and "README.md" in repo.files("main")
    assert repo.commits[repo.refs["main"]]["message"] == "Delete p/img0000.png with picbeam"
    try:
        asyncio.run(delete())
    except AlreadyGone as exc:  # picbeam delete marks it deleted, with a note
        assert "p/img0000.png was already gone from main" in str(exc)
    else:
        raise AssertionError("deleting twice should say the file is gone")


def test_errors_are_one_line_each_and_never_show_the_token(github_server, hosts_dir, images):
    [path] = images(1)
    github_server.create_repo("me/empty", empty=True)
    cases = {
        "badtoken": ({"token": "ghp_wrongwrongwrong123"}, "HTTP 401: Bad credentials (bad credentials: check 'token'"),
        "norepo": ({"repo": "me/nothing"}, "repository me/nothing not found, or the token cannot see it"),
        "readonly": ({"token": READ_TOKEN}, "the token may not write to me/pics"),
        "nobranch": ({"branch": "gh-pages"}, "branch 'gh-pages' not found in me/pics"),
        "empty": ({"repo": "me/empty"}, "the repository me/empty is empty"),
    }
    for name, (fields, expected) in cases.items():
        gh_host(hosts_dir, github_server, name=name, **fields)
        line = failure_line(
            path, name, ("ghp_wrongwrongwrong123", WRITE_TOKEN), {"GITHUB_TOKEN": WRITE_TOKEN}, cli=name == "badtoken"
        )
        assert expected in line, (name, line)
    assert shows_masked("badtoken", "token", "ghp_wrongwrongwrong123")
    done = run_picbeam("upload", path, "--host", "norepo", "--set", "repo=nonsense")
    assert done.returncode == 2 and "field 'repo' must be 'owner/name'" in done.stderr


def test_a_failed_commit_fails_the_run_with_one_line(github_server, hosts_dir, images):
    def protect(repo):
        raise api_error(403, "Protected branch update failed")

    gh_host(hosts_dir, github_server, path="{name}{ext}")
    github_server.before_ref_update = protect
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "gh", env={"GITHUB_TOKEN": WRITE_TOKEN})
    assert done.returncode == 1
    assert "the commit of 1 file(s) to me/pics failed, so their URLs above do not work" in done.stderr
    assert "Protected branch update failed" in done.stderr and "Traceback" not in done.stderr
    # The ledger does not offer the file for reuse: the next run sends it and commits it.
    done = run_picbeam("upload", path, "--host", "gh", env={"GITHUB_TOKEN": WRITE_TOKEN})
    assert done.returncode == 0, done.stderr
    assert github_server.repos["me/pics"].files("main")[path.name] == path.read_bytes()


def test_two_files_for_one_path_fail_the_second_not_silently(github_server, hosts_dir, images, tmp_path):
    gh_host(hosts_dir, github_server, path="{name}{ext}")
    first = images(1, folder="a")[0]
    second = images(2, folder="b")[1].rename(tmp_path / "b" / first.name)  # same name, other content
    done = run_picbeam("upload", first, second, "--host", "gh", "-j", "2", env={"GITHUB_TOKEN": WRITE_TOKEN})
    assert done.returncode == 1
    assert "another file of this run goes to the same path img0000.png" in done.stderr
    stored = github_server.repos["me/pics"].files("main")["img0000.png"]
    assert stored in (first.read_bytes(), second.read_bytes())
    assert done.lines[0 if stored == first.read_bytes() else 1]  # the URL printed is the stored file's


def test_picbeam_delete_commits_the_removal(github_server, hosts_dir, images):
    gh_host(hosts_dir, github_server, path="d/{name}{ext}")
    [path] = images(1)
    env = {"GITHUB_TOKEN": WRITE_TOKEN}
    done = run_picbeam("upload", path, "--host", "gh", env=env)
    assert done.returncode == 0, done.stderr
    gone = run_picbeam("delete", done.lines[0], env=env)
    assert gone.returncode == 0, gone.stderr
    assert "d/img0000.png" not in github_server.repos["me/pics"].files("main")
    assert github_server.calls[COMMITS] == 2  # the upload's and the removal's
