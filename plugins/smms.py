"""SM.MS, the seed's remote API, as a Python preset: the same HostSpec a hosts.d file would hold.

SM.MS answers a file it already has with HTTP 200 and ``{"success": false, "code": "image_repeated",
"images": "<url>"}``: that is a success whose URL is ``images``.
"""

from __future__ import annotations

from collections.abc import Callable

from picbeam import HostSpec, hookimpl

SMMS = HostSpec(
    name="smms",
    description="SM.MS (sm.ms; mirror smms.app): export SMMS_TOKEN=<your API token from sm.ms/home/apitoken>",
    endpoint="https://sm.ms/api/v2/upload",
    file_field="smfile",
    headers={"Authorization": "${SMMS_TOKEN}"},
    form={"format": "json"},
    url_path="data.url || images",
    success_path="success || code == 'image_repeated'",
    delete_path="data.delete",
    error_path="message",
    delete_method="GET",
    delete_endpoint="delete/{data.hash}",
    max_bytes=5 * 1024 * 1024,
    accept=["image/*"],
    source="picbeam.plugins.smms",
)


@hookimpl
def register_hosts(register: Callable[[HostSpec], None]) -> None:
    register(SMMS)
