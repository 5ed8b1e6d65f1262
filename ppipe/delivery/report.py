"""What a dispatch run tells: its outcomes, one-line failures, a summary, tables and markdown.

Plain data and text, no I/O beyond reading the ledger's release rows: the CLI prints these,
the Prefect flow publishes them as artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ppipe.errors import PpipeError
from ppipe.ledger import Ledger


@dataclass(frozen=True)
class Outcome:
    """What happened to one release row in this run."""

    index: int
    release: str
    destination: str
    status: str  # delivered | failed
    uri: str | None = None
    error: str | None = None
    reused: bool = False
    attempts: int = 1
    task_run_id: str | None = None


@dataclass
class Report:
    """A run's outcomes and what it left behind."""

    challenge: str
    owner: str
    now: datetime
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures outside a release (manifest, grants)
    manifest: Path | None = None
    finished: bool = False
    next_due: datetime | None = None

    @property
    def delivered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "delivered"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


def error_text(exc: BaseException) -> str:
    """One line saying what went wrong: ppipe's own message, else the exception's type and first line."""
    if isinstance(exc, PpipeError):
        text = str(exc)
    elif isinstance(exc, TimeoutError):
        text = f"timed out ({exc})" if str(exc) else "timed out"
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


def release_table(ledger: Ledger, name: str) -> list[dict]:
    """Every release row with its status, for the table artifact and ``ppipe run``'s summary."""
    return [
        {
            "release": row.name, "index": row.index, "rows": row.rows, "scheduled_at": row.scheduled_at.isoformat(),
            "destination": row.destination, "status": row.status, "attempts": row.attempts,
            "error": row.error or "", "uri": row.uri or "", "sha256": (row.sha256 or "")[:12],
            "flow_run_id": row.flow_run_id or "", "task_run_id": row.task_run_id or "",
        }
        for row in ledger.releases(name)
    ]


def failure_line(report: Report) -> str:
    """One line naming what failed in a run, for the flow's final error."""
    parts = [f"{o.release} -> {o.destination}: {o.error}" for o in report.failed] + report.problems
    more = f" (and {len(parts) - 1} more; see 'ppipe show {report.challenge}')" if len(parts) > 1 else ""
    return f"{report.challenge}: {len(parts)} delivery failure(s): {parts[0]}{more}" if parts else ""


def summary(report: Report) -> dict:
    """A JSON-ready summary of a run (the flow's return value)."""
    return {
        "challenge": report.challenge, "delivered": [f"{o.release} -> {o.uri}" for o in report.delivered],
        "failed": [f"{o.release} -> {o.destination}: {o.error}" for o in report.failed] + report.problems,
        "manifest": str(report.manifest) if report.manifest else None, "finished": report.finished,
        "next_due": report.next_due.isoformat() if report.next_due else None,
    }


def summary_markdown(ledger: Ledger, report: Report) -> str:
    """A short markdown account: delivered in this run, failed and why, what comes next and when."""
    lines = [f"# {report.challenge}: dispatch at {report.now.isoformat(timespec='seconds')}", ""]
    lines.append(f"**Delivered in this run:** {len(report.delivered)} file(s)" if report.delivered
                 else "**Delivered in this run:** nothing was due")
    lines += [f"- {o.release} -> `{o.uri}`" + (" (already there, not re-uploaded)" if o.reused else "")
              for o in report.delivered]
    if report.failed or report.problems:
        lines += ["", f"**Failed:** {len(report.failed) + len(report.problems)}"]
        lines += [f"- {o.release} -> {o.destination}: {o.error}" for o in report.failed]
        lines += [f"- {problem}" for problem in report.problems]
        lines.append("Failed releases are retried by the next run.")
    lines.append("")
    if report.finished:
        lines.append("**Next:** nothing: every release is delivered, the challenge is finished.")
    elif report.next_due:
        upcoming = [r for r in ledger.releases(report.challenge) if r.scheduled_at == report.next_due]
        name = upcoming[0].name if upcoming else "the next release"
        lines.append(f"**Next:** {name} at {report.next_due.isoformat(timespec='seconds')}")
    else:
        lines.append("**Next:** no release is scheduled later; failed ones wait for the next run.")
    if report.manifest:
        lines += ["", f"Manifest: `{report.manifest}`"]
    return "\n".join(lines)
