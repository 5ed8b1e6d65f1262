"""Permission-only commands: grant and revoke a participant's read access while a challenge runs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ppipe.cli.common import Name, command, err_console, fail, group, lazy_module, say

api = lazy_module("ppipe.api")

app = group()

Service = Annotated[str, typer.Option("--service", help="s3, gcs or drive.")]
Identity = Annotated[str, typer.Option("--identity", help="ARN / account id / IAM user, GCS member, or e-mail.")]
Via = Annotated[Optional[str], typer.Option("--via", help="s3 only: bucket-policy (default) or iam-user-policy.")]


@command(app, "grant")
def grant(
    name: Name,
    service: Service,
    identity: Identity,
    role: Annotated[str, typer.Option("--role", help="reader (default); drive: commenter; gcs: roles/storage.objectViewer, roles/storage.legacyObjectReader.")] = "reader",
    via: Via = None,
    notify: Annotated[bool, typer.Option("--notify", help="drive: send Drive's notification e-mail.")] = False,
) -> None:
    """Give a participant read access on every destination of a service (no data upload)."""
    from ppipe.challenge.spec import Grant

    report(api.grant(name, Grant(service=service, identity=identity, role=role, via=via, notify=notify)))


@command(app, "revoke")
def revoke(name: Name, service: Service, identity: Identity, via: Via = None) -> None:
    """Remove a participant's access on every destination of a service (found however it was granted)."""
    report(api.revoke_identity(name, service, identity, via))


def report(applied: list) -> None:
    """One line per destination; a failure goes to stderr and the command exits 2 (the ledger keeps the grant)."""
    failed = [item for item in applied if item.failed]
    for item in applied:
        if not item.failed:
            say(item.line())  # whole: a key file's path stays copyable
    for item in failed[:-1]:
        err_console.print(f"error: {item.line()}", markup=False, soft_wrap=True)
    if failed:
        raise fail(failed[-1].line())
