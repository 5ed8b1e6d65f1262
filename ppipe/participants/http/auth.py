"""Bearer-token authentication as a FastAPI dependency: 401 for a missing, wrong or revoked token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ppipe.participants import service
from ppipe.participants.roster import Who

_bearer = HTTPBearer(auto_error=False, description="The token `ppipe participant add` printed.")


async def participant(request: Request,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Who:
    # On the event loop: one indexed lookup by the token's hash (no thread hop on every call).
    who = service.authenticate(credentials.credentials if credentials else None, ledger=request.app.state.ledger)
    if who is None:
        raise HTTPException(401, "missing, wrong or revoked token: send Authorization: Bearer TOKEN",
                            headers={"WWW-Authenticate": "Bearer"})
    return who


Participant = Annotated[Who, Depends(participant)]
