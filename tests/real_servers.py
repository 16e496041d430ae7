"""Real server software on 127.0.0.1 for the storage hosts: OpenSSH sshd (SFTP), Apache mod_dav, nginx
dav/dav_ext, lighttpd mod_webdav, rclone's WebDAV server and its S3 server (which checks SigV4
signatures).

Each launcher starts its own instance with its own config file, a free port and folders under a new
temporary folder, and stops it by its PID; the system's services are never touched. They are context
managers, used by the tests' module-scoped fixtures and by tests/bench/storage_real.py. A launcher
whose binary is missing raises :class:`Missing` (the fixtures skip with its reason).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 20.0
START_ATTEMPTS = 3
WEB_USER = "www-data"  # the user Debian's web servers drop to; the served folders must be its own


class Missing(Exception):
    """A server's binary (or the rights it needs) is not available here; the message says which."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def need(*binaries: str) -> None:
    missing = [b for b in binaries if shutil.which(b) is None and not Path(b).exists()]
    if missing:
        raise Missing(f"{', '.join(missing)} not installed (see .ci/run)")


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise Missing(f"{what} needs root here (a login account or a server dropping to {WEB_USER})")


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Until something accepts connections on the port (the server is up), or fail with its log."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.02)
    detail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"the server did not start on port {port}: {detail}")


def wait_for_pid(pid_file: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(pid_file.read_text().split()[0])
        time.sleep(0.02)
    raise RuntimeError(f"{pid_file} was not written")


def stop_pid(pid: int, sig: int = signal.SIGTERM) -> None:
    """Stop a server by its PID and wait until it is gone (its children end with it)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def server_folder(prefix: str) -> Iterator[Path]:
    """A new temporary folder others may traverse (web servers and the SSH account are not root)."""
    folder = Path(tempfile.mkdtemp(prefix=f"picbeam-{prefix}-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def give_to(path: Path, user: str) -> None:
    shutil.chown(path, user, user)
    for below in path.rglob("*"):
        shutil.chown(below, user, user)


def web_folders(folder: Path, *names: str) -> list[Path]:
    """New folders under ``folder`` that the web server's user owns (it writes files, locks, logs there)."""
    made = []
    for name in names:
        (folder / name).mkdir()
        give_to(folder / name, WEB_USER)
        made.append(folder / name)
    return made


# -- OpenSSH ---------------------------------------------------------------------------------------------
@dataclass
class SSHD:
    port: int
    pid: int
    username: str
    password: str
    home: Path  # the account's login folder
    known_hosts: Path
    key_file: Path  # an OpenSSH-format private key encrypted with ``passphrase`` (ssh-keygen's default)
    passphrase: str
    plain_key_file: Path  # an unencrypted key for the same account

    def drop_connections(self) -> list[int]:
        """Kill this sshd's per-connection processes: every client's connection drops at once."""
        killed, below = [], children(self.pid)
        while below:  # the session's own processes too: the unprivileged child holds the socket
            killed += below
            below = [pid for parent in below for pid in children(parent)]
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return killed


@contextlib.contextmanager
def sshd() -> Iterator[SSHD]:
    """OpenSSH's sshd with SFTP, for a new login account (removed afterwards) with a password and keys."""
    need("/usr/sbin/sshd", "/usr/lib/openssh/sftp-server", "ssh-keygen", "useradd", "chpasswd", "userdel")
    need_root("sshd")
    with server_folder("sshd") as folder:
        user, password, passphrase = f"pbt{secrets.token_hex(4)}", secrets.token_urlsafe(12), "key-pass-2468"
        home = folder / "home"
        keys = folder / "authorized"
        keys.mkdir()
        for name, words in (("host_key", ""), ("id_ed25519", passphrase), ("id_plain", "")):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", words, "-C", "", "-f", str(folder / name)], check=True
            )
        public = "".join((folder / f"{name}.pub").read_text() for name in ("id_ed25519", "id_plain"))
        (keys / user).write_text(public)
        subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/sh", user], check=True)
        try:
            subprocess.run(["chpasswd"], input=f"{user}:{password}".encode(), check=True)
            home.mkdir()
            give_to(home, user)
            port = free_port()
            config = folder / "sshd_config"
            config.write_text(
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
                f"AuthorizedKeysFile {keys}/%u\nStrictModes no\nUsePAM no\nPasswordAuthentication yes\n"
                "KbdInteractiveAuthentication no\nPermitRootLogin no\nAllowUsers " + user + "\n"
                "Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel ERROR\n"
            )
            Path("/run/sshd").mkdir(exist_ok=True)
            log = folder / "sshd.log"
            subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(log)], check=True)
            pid = wait_for_pid(folder / "sshd.pid")
            try:
                wait_for_port(port, log=log)
                host_key = (folder / "host_key.pub").read_text().split()
                known_hosts = folder / "known_hosts"
                known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
                yield SSHD(
                    port,
                    pid,
                    user,
                    password,
                    home,
                    known_hosts,
                    folder / "id_ed25519",
                    passphrase,
                    folder / "id_plain",
                )
            finally:
                stop_pid(pid)
        finally:
            subprocess.run(["userdel", user], check=False, capture_output=True)


# -- WebDAV servers --------------------------------------------------------------------------------------
@dataclass
class DAV:
    url: str  # the collection to upload under (exists, empty)
    root: Path  # the folder behind it on disk
    username: str
    password: str
    auth: str  # "basic" or "digest"
    pid: int = 0
    access_log: Path | None = None  # "METHOD PATH STATUS" per request, where the server writes one


DAV_USER, DAV_PASSWORD, REALM = "alice", "dav-pass-4321", "picbeam"


def _digest_line(user: str, password: str, realm: str) -> str:
    import hashlib

    return f"{user}:{realm}:{hashlib.md5(f'{user}:{realm}:{password}'.encode()).hexdigest()}\n"


def _basic_line(user: str, password: str) -> str:
    done = subprocess.run(["htpasswd", "-nbB", user, password], check=True, capture_output=True, text=True)
    return done.stdout.strip() + "\n"


@contextlib.contextmanager
def apache(auth: str = "digest", public_read: bool = True, nonce_seconds: int = 1) -> Iterator[DAV]:
    """Apache mod_dav; writing needs a login (Basic or Digest), reading needs none when ``public_read``
    (``<LimitExcept GET HEAD OPTIONS PROPFIND>``: PROPFIND gets no challenge). A Digest nonce lives
    ``nonce_seconds``, so a client must answer a stale-nonce challenge again."""
    need("apache2", "htpasswd")
    need_root("apache2")
    with server_folder("apache") as folder:
        served, lock = web_folders(folder, "dav", "lock")
        port = free_port()
        users = folder / "users"
        modules = "/usr/lib/apache2/modules"
        if auth == "digest":
            users.write_text(_digest_line(DAV_USER, DAV_PASSWORD, REALM))
            auth_lines = (
                f'AuthType Digest\nAuthName "{REALM}"\nAuthDigestProvider file\nAuthUserFile {users}\n'
                f"AuthDigestNonceLifetime {nonce_seconds}\n"
            )
        else:
            users.write_text(_basic_line(DAV_USER, DAV_PASSWORD))
            auth_lines = f'AuthType Basic\nAuthName "{REALM}"\nAuthBasicProvider file\nAuthUserFile {users}\n'
        require = (
            "<LimitExcept GET HEAD OPTIONS PROPFIND>\nRequire valid-user\n</LimitExcept>"
            if public_read
            else "Require valid-user"
        )
        load = "\n".join(
            f"LoadModule {name}_module {modules}/mod_{name}.so"
            for name in (
                "mpm_event",
                "authn_core",
                "authz_core",
                "authn_file",
                "authz_user",
                "auth_basic",
                "auth_digest",
                "dav",
                "dav_fs",
                "alias",
            )
        )
        config = folder / "httpd.conf"
        config.write_text(
            f"{load}\nServerRoot {folder}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\n"
            f"PidFile {folder}/httpd.pid\nDefaultRuntimeDir {folder}\nErrorLog {folder}/error.log\n"
            f"User {WEB_USER}\nGroup {WEB_USER}\nDavLockDB {lock}/davlock\nLogLevel warn\n"
            f'CustomLog {folder}/access.log "%m %U %>s"\n'
            f"Alias /dav {served}\n<Directory {served}>\nDav On\n{auth_lines}{require}\n</Directory>\n"
        )
        subprocess.run(["apache2", "-f", str(config), "-k", "start"], check=True, capture_output=True)
        pid = wait_for_pid(folder / "httpd.pid")
        try:
            wait_for_port(port, log=folder / "error.log")
            yield DAV(f"http://127.0.0.1:{port}/dav", served, DAV_USER, DAV_PASSWORD, auth, pid, folder / "access.log")
        finally:
            stop_pid(pid)


@contextlib.contextmanager
def nginx() -> Iterator[DAV]:
    """nginx's dav module with dav_ext (PROPFIND) and Basic authentication."""
    need("nginx", "htpasswd", "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")
    need_root("nginx")
    with server_folder("nginx") as folder:
        served, temp = web_folders(folder, "dav", "tmp")
        port = free_port()
        (folder / "users").write_text(_basic_line(DAV_USER, DAV_PASSWORD))
        config = folder / "nginx.conf"
        config.write_text(
            "load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;\n"
            f"user {WEB_USER};\nworker_processes 2;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
            "daemon on;\nevents { worker_connections 256; }\nhttp {\n"
            f"access_log off;\nclient_body_temp_path {temp}/body;\nproxy_temp_path {temp}/proxy;\n"
            f"fastcgi_temp_path {temp}/fcgi;\nuwsgi_temp_path {temp}/uwsgi;\nscgi_temp_path {temp}/scgi;\n"
            f"server {{\nlisten 127.0.0.1:{port};\nlocation /dav/ {{\nalias {served}/;\n"
            "dav_methods PUT DELETE MKCOL;\ndav_ext_methods PROPFIND OPTIONS;\ncreate_full_put_path on;\n"
            f'client_max_body_size 0;\nauth_basic "{REALM}";\nauth_basic_user_file {folder}/users;\n}}\n}}\n}}\n'
        )
        log = folder / "error.log"
        subprocess.run(["nginx", "-e", str(log), "-c", str(config)], check=True, capture_output=True)
        pid = wait_for_pid(folder / "nginx.pid")
        try:
            wait_for_port(port, log=log)
            yield DAV(f"http://127.0.0.1:{port}/dav", served, DAV_USER, DAV_PASSWORD, "basic", pid)
        finally:
            stop_pid(pid, signal.SIGQUIT)


@contextlib.contextmanager
def lighttpd(auth: str = "basic") -> Iterator[DAV]:
    """lighttpd's mod_webdav with Basic or Digest (MD5) authentication."""
    need("lighttpd", "/usr/lib/lighttpd/mod_webdav.so")
    need_root("lighttpd")
    with server_folder("lighttpd") as folder:
        served, logs = web_folders(folder, "dav", "log")
        port = free_port()
        users = folder / "users"
        if auth == "digest":
            users.write_text(_digest_line(DAV_USER, DAV_PASSWORD, REALM))
            backend = f'auth.backend = "htdigest"\nauth.backend.htdigest.userfile = "{users}"\n'
        else:
            users.write_text(f"{DAV_USER}:{DAV_PASSWORD}\n")
            backend = f'auth.backend = "plain"\nauth.backend.plain.userfile = "{users}"\n'
        config = folder / "lighttpd.conf"
        config.write_text(
            'server.modules = ("mod_auth", "mod_authn_file", "mod_webdav")\n'
            f'server.document-root = "{folder}"\nserver.bind = "127.0.0.1"\nserver.port = {port}\n'
            f'server.username = "{WEB_USER}"\nserver.groupname = "{WEB_USER}"\n'
            f'server.errorlog = "{logs}/error.log"\nserver.pid-file = "{folder}/lighttpd.pid"\n'
            'include_shell "/usr/share/lighttpd/create-mime.conf.pl"\n'
            f'{backend}$HTTP["url"] =~ "^/dav($|/)" {{\nwebdav.activate = "enable"\n'
            f'auth.require = ("" => ("method" => "{auth}", "realm" => "{REALM}", "require" => "valid-user"))\n}}\n'
        )
        log = logs / "error.log"
        process = subprocess.Popen(
            ["lighttpd", "-D", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(port, process, log)
            yield DAV(f"http://127.0.0.1:{port}/dav", served, DAV_USER, DAV_PASSWORD, auth, process.pid)
        finally:
            process.terminate()
            process.wait(10)


@contextlib.contextmanager
def rclone_webdav() -> Iterator[DAV]:
    """rclone's WebDAV server with Basic authentication."""
    need("rclone")
    with server_folder("rclone-dav") as folder:
        (folder / "dav").mkdir()
        login = ("--user", DAV_USER, "--pass", DAV_PASSWORD)
        with _rclone(folder, "webdav", *login, str(folder / "dav")) as (port, pid):
            yield DAV(f"http://127.0.0.1:{port}", folder / "dav", DAV_USER, DAV_PASSWORD, "basic", pid)


@contextlib.contextmanager
def _rclone(folder: Path, kind: str, *args: str) -> Iterator[tuple[int, int]]:
    """``rclone serve KIND ARGS`` on a free port: the port and its PID."""
    port = free_port()
    log = folder / "rclone.log"
    command = [shutil.which("rclone") or "rclone", "serve", kind, "--addr", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "--config", os.devnull, "--log-file", str(log), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, log)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)


# -- FTP -------------------------------------------------------------------------------------------------
@dataclass
class VSFTPD:
    port: int
    root: Path  # where anonymous uploads land (the FTP folder "pub")
    cert: Path  # its self-signed certificate for 127.0.0.1 (explicit TLS)
    username: str = "anonymous"
    folder: str = "pub"


@contextlib.contextmanager
def vsftpd() -> Iterator[VSFTPD]:
    """vsftpd with anonymous uploads into ``pub``, plain or explicit TLS (AUTH TLS) with its own certificate."""
    need("/usr/sbin/vsftpd", "openssl")
    need_root("vsftpd")
    with server_folder("vsftpd") as folder:
        root = folder / "anon"
        (root / "pub").mkdir(parents=True)
        shutil.chown(root / "pub", "ftp", "ftp")
        root.chmod(0o755)
        Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", folder / "key.pem",
                        "-out", folder / "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)  # fmt: skip
        port = free_port()
        config = folder / "vsftpd.conf"
        config.write_text(
            "\n".join([
                "listen=YES", "listen_address=127.0.0.1", f"listen_port={port}", "background=NO",
                "anonymous_enable=YES", "local_enable=NO", "write_enable=YES", "anon_upload_enable=YES",
                "anon_mkdir_write_enable=YES", "anon_other_write_enable=YES", f"anon_root={root}", "anon_umask=022",
                "no_anon_password=YES", "secure_chroot_dir=/var/run/vsftpd/empty", "pasv_enable=YES",
                "pasv_address=127.0.0.1", "seccomp_sandbox=NO", "ftp_username=ftp", f"vsftpd_log_file={folder}/log",
                "ssl_enable=YES", "allow_anon_ssl=YES", "force_anon_logins_ssl=NO", "force_anon_data_ssl=NO",
                f"rsa_cert_file={folder}/cert.pem", f"rsa_private_key_file={folder}/key.pem", "require_ssl_reuse=NO",
            ]) + "\n"
        )  # fmt: skip
        log = folder / "stderr.log"
        with log.open("wb") as errors:
            process = subprocess.Popen(["/usr/sbin/vsftpd", str(config)], stdout=subprocess.DEVNULL, stderr=errors)
        try:
            wait_for_port(port, process, log)
            yield VSFTPD(port, root / "pub", folder / "cert.pem")
        finally:
            process.terminate()
            process.wait(10)


# -- S3 --------------------------------------------------------------------------------------------------
@dataclass
class S3:
    endpoint: str
    bucket: str
    root: Path  # the bucket's folder on disk
    access_key: str
    secret_key: str
    pid: int = 0

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


@contextlib.contextmanager
def rclone_s3(bucket: str = "pics") -> Iterator[S3]:
    """rclone's S3 server (path-style; it checks SigV4 signatures) over a folder whose top-level folders
    are its buckets."""
    need("rclone")
    with server_folder("rclone") as folder:
        (folder / "data" / bucket).mkdir(parents=True)
        key, secret = "PICBEAMTESTKEY", secrets.token_urlsafe(24)
        with _rclone(folder, "s3", "--auth-key", f"{key},{secret}", str(folder / "data")) as (port, pid):
            yield S3(f"http://127.0.0.1:{port}", bucket, folder / "data" / bucket, key, secret, pid)


def started(launcher: object, *args: object) -> Iterator[object]:
    """For a module-scoped fixture: the started server, stopped afterwards; a skip with the reason when
    its software is missing."""
    import pytest

    with contextlib.ExitStack() as stack:
        for attempt in range(START_ATTEMPTS):
            try:
                server = stack.enter_context(launcher(*args))  # type: ignore[operator]
                break
            except Missing as exc:
                pytest.skip(str(exc))
            except (RuntimeError, subprocess.CalledProcessError):
                # free_port's port can be taken by another program before the server binds it (parallel
                # workers, other users' servers): a new start gets a new port.
                if attempt == START_ATTEMPTS - 1:
                    raise
        yield server
