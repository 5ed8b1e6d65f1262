"""How local-folder failures read, and which are worth retrying: the one table for local folders.

Transient: the errno values a busy or briefly unavailable (network-mounted) filesystem gives.
Terminal: everything else (no permission, no such folder, a file in the way, a full disk).
"""

from __future__ import annotations

import errno

TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.EBUSY, errno.ESTALE, errno.EIO}


def translate(exc: OSError, what: str) -> tuple[str, bool]:
    """(one line saying why ``what`` failed, whether a retry may help)."""
    reason = exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    return f"cannot {what}: {reason}{where}", exc.errno in TRANSIENT_ERRNOS
