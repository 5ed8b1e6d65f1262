"""Permission-only commands: grant and revoke a participant's read access while a challenge runs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ppipe import api
from ppipe.cli import command, console
from ppipe.challenge.spec import Grant

Name = Annotated[str, typer.Argument(help="Challenge name.")]
Service = Annotated[str, typer.Option("--service", help="s3, gcs or drive.")]
Identity = Annotated[str, typer.Option("--identity", help="ARN / account id / IAM user, GCS member, or e-mail.")]
Via = Annotated[Optional[str], typer.Option("--via", help="s3 only: bucket-policy (default) or iam-user-policy.")]


@command("grant")
def grant(
    name: Name,
    service: Service,
    identity: Identity,
    role: Annotated[str, typer.Option("--role", help="reader (default); drive: commenter, writer.")] = "reader",
    via: Via = None,
    notify: Annotated[bool, typer.Option("--notify", help="drive: send Drive's notification e-mail.")] = False,
) -> None:
    """Give a participant read access on every destination of a service (no data upload)."""
    for applied in api.grant(name, Grant(service=service, identity=identity, role=role, via=via, notify=notify)):
        console.print(f"granted {applied.grant.identity} on {applied.destination}: {applied.detail}", markup=False)


@command("revoke")
def revoke(name: Name, service: Service, identity: Identity, via: Via = None) -> None:
    """Remove a participant's access on every destination of a service."""
    for applied in api.revoke(name, Grant(service=service, identity=identity, via=via)):
        console.print(f"revoked {applied.grant.identity} on {applied.destination}", markup=False)
