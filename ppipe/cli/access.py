"""Permission-only commands: grant and revoke a participant's read access while a challenge runs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ppipe import api
from ppipe.challenge.spec import Grant
from ppipe.cli.common import Name, command, group, say

app = group()

Service = Annotated[str, typer.Option("--service", help="s3, gcs or drive.")]
Identity = Annotated[str, typer.Option("--identity", help="ARN / account id / IAM user, GCS member, or e-mail.")]
Via = Annotated[Optional[str], typer.Option("--via", help="s3 only: bucket-policy (default) or iam-user-policy.")]


@command(app, "grant")
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
        say(f"granted {applied.grant.identity} on {applied.destination}: {applied.detail}", wrap=True)


@command(app, "revoke")
def revoke(name: Name, service: Service, identity: Identity, via: Via = None) -> None:
    """Remove a participant's access on every destination of a service."""
    for applied in api.revoke(name, Grant(service=service, identity=identity, via=via)):
        say(f"revoked {applied.grant.identity} on {applied.destination}", wrap=True)
