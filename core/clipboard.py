"""The system clipboard: read the image on it, put text on it.

One small tool per platform does the work: ``wl-paste``/``wl-copy`` on Wayland, ``xclip`` on X11,
``osascript``/``pbcopy`` on macOS and PowerShell on Windows. Nothing here imports a GUI toolkit.
"""

from __future__ import annotations

import binascii
import mimetypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import PicbeamError
from .inputs import SNIFF_BYTES, sniff_image

TIMEOUT = 10.0
# The image types asked for, best first, when the clipboard offers several.
PREFERRED = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")


class ClipboardError(PicbeamError):
    """The clipboard could not be read or written (no tool, no image...)."""


def _which(name: str) -> str | None:
    return shutil.which(name)


def _platform() -> str:
    """``wayland``, ``x11``, ``macos``, ``windows``; or ``none`` with no usable clipboard tool."""
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "windows"
    if os.environ.get("WAYLAND_DISPLAY") and _which("wl-paste") and _which("wl-copy"):
        return "wayland"
    if os.environ.get("DISPLAY") and _which("xclip"):
        return "x11"
    return "none"


def _no_tool() -> ClipboardError:
    if os.environ.get("WAYLAND_DISPLAY"):
        return ClipboardError("no clipboard tool: install wl-clipboard (wl-paste, wl-copy)")
    if os.environ.get("DISPLAY"):
        return ClipboardError("no clipboard tool: install xclip")
    return ClipboardError("no clipboard: neither WAYLAND_DISPLAY nor DISPLAY is set (no graphical session)")


def _run(
    command: list[str], *, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, input=input, capture_output=True, timeout=TIMEOUT, check=False,
                              env={**os.environ, **env} if env else None)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ClipboardError(f"{command[0]} did not answer within {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise ClipboardError(f"cannot run {command[0]}: {exc.strerror or exc}") from None


def _pick(types: list[str]) -> str | None:
    offered = [t.strip() for t in types if t.strip().startswith("image/")]
    for wanted in PREFERRED:
        if wanted in offered:
            return wanted
    return offered[0] if offered else None


# -- reading an image ----------------------------------------------------------------------------
def read_image() -> tuple[bytes, str]:
    """The image on the clipboard as ``(bytes, mime)``; ClipboardError when there is none."""
    kind = _platform()
    if kind == "none":
        raise _no_tool()
    data = {"wayland": _read_wayland, "x11": _read_x11, "macos": _read_macos, "windows": _read_windows}[kind]()
    mime = sniff_image(data[:SNIFF_BYTES]) if data else None
    if mime is None:
        raise ClipboardError("the clipboard holds no image")
    return data, mime


def _read_wayland() -> bytes:
    listed = _run(["wl-paste", "--list-types"])
    chosen = _pick(listed.stdout.decode("utf-8", "replace").splitlines()) if listed.returncode == 0 else None
    if chosen is None:
        raise ClipboardError("the clipboard holds no image")
    return _run(["wl-paste", "--no-newline", "--type", chosen]).stdout


def _read_x11() -> bytes:
    listed = _run(["xclip", "-selection", "clipboard", "-target", "TARGETS", "-out"])
    chosen = _pick(listed.stdout.decode("utf-8", "replace").splitlines()) if listed.returncode == 0 else None
    if chosen is None:
        raise ClipboardError("the clipboard holds no image")
    return _run(["xclip", "-selection", "clipboard", "-target", chosen, "-out"]).stdout


def _read_macos() -> bytes:
    # AppleScript prints the data as «data PNGf89504E47…»: hex after the four-letter type code.
    for code in ("PNGf", "TIFF", "JPEG"):
        done = _run(["osascript", "-e", f"the clipboard as «class {code}»"])
        match = re.search(rb"\xc2\xabdata \w{4}([0-9A-Fa-f]+)\xc2\xbb", done.stdout)
        if done.returncode == 0 and match:
            return binascii.unhexlify(match.group(1))
    return b""


_WINDOWS_READ = (
    "Add-Type -AssemblyName System.Windows.Forms; Add-Type -AssemblyName System.Drawing; "
    "$image = [System.Windows.Forms.Clipboard]::GetImage(); "
    "if ($image -eq $null) { exit 3 }; "
    "$image.Save($env:PICBEAM_CLIPBOARD_FILE, [System.Drawing.Imaging.ImageFormat]::Png)"
)


def _read_windows() -> bytes:
    with tempfile.TemporaryDirectory(prefix="picbeam-clip-") as folder:
        target = Path(folder, "clipboard.png")
        _run(["powershell", "-NoProfile", "-NonInteractive", "-STA", "-Command", _WINDOWS_READ],
             env={"PICBEAM_CLIPBOARD_FILE": str(target)})  # fmt: skip
        return target.read_bytes() if target.exists() else b""


def save_image(folder: Path) -> Path:
    """Save the clipboard's image into ``folder`` as ``clipboard-YYYYmmdd-HHMMSS.EXT`` and return the path."""
    data, mime = read_image()
    extension = {"image/jpeg": ".jpg", "image/svg+xml": ".svg"}.get(mime) or mimetypes.guess_extension(mime) or ""
    path = folder / f"clipboard-{time.strftime('%Y%m%d-%H%M%S')}{extension}"
    path.write_bytes(data)
    return path


# -- writing text --------------------------------------------------------------------------------
def copy_text(text: str) -> None:
    """Put ``text`` on the clipboard; ClipboardError when it cannot."""
    kind = _platform()
    data = text.encode("utf-8")
    if kind == "none":
        raise _no_tool()
    if kind in ("wayland", "x11"):
        # Both tools stay in the background to serve the selection: never wait on their output.
        command = ["wl-copy", "--type", "text/plain;charset=utf-8"] if kind == "wayland" else [
            "xclip", "-selection", "clipboard", "-in"]  # fmt: skip
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            process.communicate(data, timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClipboardError(f"cannot run {command[0]}: {exc}") from None
        if process.returncode:
            raise ClipboardError(f"{command[0]} failed (exit status {process.returncode})")
        return
    if kind == "macos":
        done = _run(["pbcopy"], input=data, env={"LANG": "en_US.UTF-8"})
    else:
        script = "[Console]::InputEncoding = [Text.Encoding]::UTF8; Set-Clipboard -Value ([Console]::In.ReadToEnd())"
        done = _run(["powershell", "-NoProfile", "-NonInteractive", "-STA", "-Command", script], input=data)
    if done.returncode:
        raise ClipboardError(f"cannot write the clipboard: {done.stderr.decode('utf-8', 'replace').strip()[:200]}")


def copy_results(lines: list[str]) -> None:
    """Put result lines on the clipboard; a clipboard that cannot be written is a warning, not a failure."""
    try:
        copy_text("\n".join(lines))
    except ClipboardError as exc:
        print(f"picbeam: --copy: {exc}", file=sys.stderr)
