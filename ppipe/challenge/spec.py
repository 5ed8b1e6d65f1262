"""The challenge model: what a course organiser declares, validated once, in Python or YAML.

Pure: nothing here touches the network, the ledger or Prefect. Relative paths in a YAML
file are resolved against the file's folder (pass ``base_dir`` in the validation context).
The destination specs are the registered kinds' (``ppipe.destinations.registry``): the
union below, the ``kind:`` tags and the grant checks all derive from the registry.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ppipe import naming, urls
from ppipe.challenge.durations import format_duration, parse_duration, parse_time, positive_duration
from ppipe.challenge.planning import PlannedRelease, plan
from ppipe.challenge.scenario import Files, Scenario, check_releases
from ppipe.challenge.secrets import no_secret_options
from ppipe.destinations import registry
from ppipe.destinations.drive.spec import DriveDestination
from ppipe.destinations.gcs.spec import GcsDestination
from ppipe.destinations.local.spec import LocalDestination
from ppipe.destinations.s3.spec import S3Destination
from ppipe.errors import PpipeError
from ppipe.validation import Model, absolute_path
from ppipe.challenge.requests import Leaderboard, Requests, requests_need_row_ids

SourceFormat = Literal["csv", "tsv", "parquet", "json", "ndjson"]
OutputFormat = Literal["csv", "parquet", "json", "ndjson"]
Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$"),
    Field(description="lowercase letters, digits and hyphens, 1-50 characters, no leading/trailing hyphen"),
]

# --- source --------------------------------------------------------------------------------

_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson",
}
_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "https://", "http://")


__all__ = [
    "Challenge", "Delivery", "DestinationSpec", "DriveDestination", "GcsDestination", "Grant", "LocalDestination",
    "Output", "PlannedRelease", "S3Destination", "Schedule", "Source", "parse_duration",
]


class Source(Model):
    """Where the dataset is read from."""

    url: str = Field(description="A local path or an fsspec URL (file://, s3://, gs://, gcs://, https://).")
    format: SourceFormat | None = Field(
        default=None, description="csv, tsv, parquet, json (array of records) or ndjson; inferred from the suffix."
    )
    compression: Literal["gzip", "zstd"] | None = Field(
        default=None, description="gzip or zstd for CSV/TSV/NDJSON; inferred from a .gz/.zst suffix."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options such as endpoint_url or profile. Secrets are refused here.",
    )
    column_types: dict[str, Literal["string", "int", "float", "bool", "date", "datetime"]] = Field(
        default_factory=dict,
        description="Declared types used when converting to another format; other columns are inferred.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, (str, Path)) else value

    @field_validator("url")
    @classmethod
    def _resolve(cls, url: str, info: ValidationInfo) -> str:
        url = str(url).strip()
        if not url:
            raise ValueError("must not be empty")
        if "://" in url and not url.startswith(("file://",) + REMOTE_SCHEMES):
            raise ValueError(f"unsupported scheme in {url!r}: use a path, file://, s3://, gs://, gcs:// or https://")
        if url.startswith(REMOTE_SCHEMES):
            urls.check_source_url(url)
        if url.startswith("file://"):
            url = url[len("file://"):]
        if "://" not in url:
            url = str(absolute_path(Path(url), info))
        return url

    @field_validator("storage_options")
    @classmethod
    def _no_secrets(cls, options: dict[str, Any]) -> dict[str, Any]:
        return no_secret_options(options)

    @model_validator(mode="after")
    def _infer_format(self) -> Source:
        suffixes = [s.lower() for s in Path(self.url.split("?", 1)[0]).suffixes]
        compression = self.compression
        if suffixes and suffixes[-1] in _COMPRESSIONS:
            compression = compression or _COMPRESSIONS[suffixes.pop()]
        fmt = self.format or (_SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None)
        if fmt is None:
            raise ValueError(
                f"cannot infer the format of {self.url!r} from its suffix: set source.format "
                "to csv, tsv, parquet, json or ndjson"
            )
        if compression and fmt in ("parquet", "json"):
            raise ValueError(f"{compression}-compressed {fmt} is not supported: compress CSV, TSV or NDJSON only")
        object.__setattr__(self, "format", fmt)
        object.__setattr__(self, "compression", compression)
        return self

    @property
    def is_remote(self) -> bool:
        return self.url.startswith(REMOTE_SCHEMES)


# --- schedule ------------------------------------------------------------------------------


class Schedule(Model):
    """When the releases arrive: the first at ``start``, then one every ``every``."""

    start: AwareDatetime = Field(description="Time of the first release, with a timezone (naive times are refused).")
    every: timedelta = Field(description="Interval between releases: '90s', '6h', '1d', 'PT6H' or seconds.")

    @field_validator("start", mode="before")
    @classmethod
    def _aware_only(cls, value: Any) -> Any:
        return parse_time(value)

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return positive_duration(value, "the interval")

    def time_of(self, index: int) -> datetime:
        return self.start + index * self.every


# --- destinations and grants: derived from the registry ---------------------------------


class DestinationSpec:
    """Any registered destination kind's spec, told apart by ``kind`` (a tagged union built
    from the registry when the model is built, and rebuilt when a kind registers)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        classes = registry.spec_classes()
        if len(classes) == 1:
            return handler.generate_schema(classes[0])
        return handler.generate_schema(Annotated[Union[classes], Field(discriminator="kind")])


class GrantService:
    """The ``service`` of a grant: a registered kind that can grant (a Literal of their tags)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        return handler.generate_schema(Literal[registry.granting_kinds()])


class GrantForm:
    """The ``via`` of a grant: one of the forms some registered kind offers."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        forms = tuple(dict.fromkeys(f for spec in registry.spec_classes() for f in spec.grant_forms))
        return handler.generate_schema(Literal[forms] | None)


def _kinds_with(capability: str) -> str:
    return ", ".join(spec.tag() for spec in registry.spec_classes() if getattr(spec, capability))


class Grant(Model):
    """Read access for one participant on every destination of one service."""

    service: GrantService = Field(description="A kind that can grant: s3, gcs or drive.")
    via: GrantForm = Field(default=None, description="s3 only: bucket-policy (default) or iam-user-policy.")
    identity: str = Field(
        description="s3: an IAM ARN or 12-digit account id (bucket-policy) or an IAM user name "
        "(iam-user-policy); gcs: user:/group:/serviceAccount: member or an e-mail; drive: an e-mail."
    )
    role: str = Field(default="reader", description="reader by default; drive also commenter; gcs roles/storage.objectViewer or legacyObjectReader")
    notify: bool = Field(default=False, description="drive only: send Drive's notification e-mail.")

    @field_validator("identity")
    @classmethod
    def _identity(cls, identity: str, info: ValidationInfo) -> str:
        spec = registry.spec_class(info.data.get("service"))
        if spec is None:
            return identity
        return spec.check_identity(identity, info.data.get("via"))

    @field_validator("role")
    @classmethod
    def _role(cls, role: str, info: ValidationInfo) -> str:
        spec = registry.spec_class(info.data.get("service"))
        return role if spec is None else spec.check_role(role)

    @model_validator(mode="after")
    def _check(self) -> Grant:
        spec = registry.spec_class(self.service)
        if self.via is not None and self.via not in spec.grant_forms:
            raise ValueError(f"via: applies to {_kinds_with('grant_forms')} grants only")
        if self.notify and not spec.notifies:
            raise ValueError(f"notify: applies to {_kinds_with('notifies')} grants only")
        if self.via is None and spec.grant_forms:
            object.__setattr__(self, "via", spec.grant_forms[0])
        return self

    @property
    def key(self) -> str:
        """Identifies the grant in the ledger: service, identity and (s3) how it is granted."""
        return f"{self.service}:{self.via}:{self.identity}" if self.via else f"{self.service}:{self.identity}"


# --- output and delivery -------------------------------------------------------------------


class Output(Model):
    """The files participants receive."""

    format: OutputFormat = Field(default="csv", description="csv, parquet, json or ndjson.")
    shuffle: bool = Field(default=False, description="Shuffle the rows once (seeded) before cutting releases.")
    seed: int | None = Field(default=None, description="Seed of the shuffle and of random assignment.")
    name: str = Field(default="release_{index}", description="File name template; {index} and {challenge} allowed.")
    row_id: bool = Field(default=False, description="Add a row_id column: the row's number in the source.")

    @field_validator("name")
    @classmethod
    def _template(cls, template: str) -> str:
        return naming.check_name_template(template)

    @model_validator(mode="after")
    def _draw_seed(self) -> Output:
        # A shuffle must be reproducible: draw the seed once, it is then stored with the spec.
        if self.seed is None and self.shuffle:
            object.__setattr__(self, "seed", random.SystemRandom().randrange(2**31))
        return self


class Delivery(Model):
    """How hard to try: Prefect retries I/O tasks with exponential backoff and a timeout."""

    retries: int = Field(default=3, ge=0, le=20, description="Retries of each upload/grant task.")
    retry_delay: timedelta = Field(default=timedelta(seconds=2), description="First retry delay; doubles each time.")
    timeout: timedelta = Field(default=timedelta(minutes=30), description="Time limit of one task.")

    @field_validator("retry_delay", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return positive_duration(value, "the duration")


# --- the challenge -------------------------------------------------------------------------

Assignment = Literal["all", "round_robin", "random"]


class Challenge(Model):
    """A dataset cut into releases that arrive on a schedule at participants' storage."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Random UUID, drawn when the challenge is made.")
    name: Slug = Field(description="Unique slug: lowercase letters, digits and hyphens.")
    description: str = Field(default="", description="Free text shown to organisers.")
    source: Source = Field(description="The dataset: a path or URL, or {url, format, compression, storage_options}.")
    releases: list[float | Fraction] | int = Field(
        description="Proportions summing to 1, or N for N equal releases."
    )
    schedule: Schedule
    destinations: list[DestinationSpec] = Field(min_length=1, description="Where the releases go.")
    assign: Assignment = Field(default="all", description="all, round_robin or random (seeded non-empty subset).")
    grants: list[Grant] = Field(default_factory=list, description="Who gets read access where.")
    output: Output = Field(default_factory=Output)
    delivery: Delivery = Field(default_factory=Delivery)
    scenario: Scenario | None = Field(default=None, description="What goes wrong, release by release (ppipe.scenario).")
    files: Files | None = Field(default=None, description="{column, root}: a column referencing files shipped per release.")
    requests: Requests | None = Field(default=None, description="Validation and prediction requests to participants.")
    leaderboard: Leaderboard | None = Field(default=None, description="Who may see the leaderboard (public by default).")

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, hide_input_in_errors=True)

    @field_validator("releases", mode="before")
    @classmethod
    def _releases(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a list of proportions or a number of releases")
        if isinstance(value, int):
            if value < 1:
                raise ValueError("the number of releases must be at least 1")
            if value > 100_000:
                raise ValueError("at most 100000 releases")
            return value
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list of proportions or a number of releases")
        fractions = []
        for i, p in enumerate(value):
            if isinstance(p, bool) or not isinstance(p, (int, float, str, Fraction)):
                raise ValueError(f"item {i}: {p!r} is not a number")
            try:
                f = p if isinstance(p, Fraction) else Fraction(str(p))
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"item {i}: {p!r} is not a number") from None
            if f <= 0:
                raise ValueError(f"item {i}: proportion {p} must be greater than 0")
            fractions.append(f)
        total = sum(fractions)
        if abs(total - 1) > Fraction(1, 10**9):
            raise ValueError(f"proportions must sum to 1 (within 1e-9), they sum to {float(total):.12g}")
        return fractions

    @model_validator(mode="after")
    def _consistent(self) -> Challenge:
        locations = [d.location(self.name) for d in self.destinations]
        for i, loc in enumerate(locations):
            if loc in locations[:i]:
                raise ValueError(f"destinations.{i}: same location as an earlier destination ({loc})")
        kinds = {d.kind for d in self.destinations}
        keys = [grant.key for grant in self.grants]
        for i, grant in enumerate(self.grants):
            if grant.service not in kinds:
                raise ValueError(f"grants.{i}.service: no {grant.service} destination to grant access on")
            if grant.key in keys[:i]:
                raise ValueError(f"grants.{i}: same {grant.service} identity as an earlier grant ({grant.identity})")
        _check_scenario(self)
        if problem := requests_need_row_ids(self.requests, self.output.row_id):
            raise ValueError(problem)
        return self

    # -- derived views --------------------------------------------------------------------

    @property
    def proportions(self) -> list[Fraction]:
        if isinstance(self.releases, int):
            return [Fraction(1, self.releases)] * self.releases
        return [Fraction(p) if not isinstance(p, Fraction) else p for p in self.releases]

    @property
    def release_count(self) -> int:
        return len(self.proportions)

    def destination_labels(self) -> list[str]:
        return [d.location(self.name) for d in self.destinations]

    def release_name(self, index: int) -> str:
        return self.output.name.format(index=index, challenge=self.name)

    def release_file_name(self, index: int) -> str:
        """File name of release ``index`` as delivered: the name template plus the format's suffix."""
        return f"{self.release_name(index)}.{self.output.format}"

    def plan(self, n_rows: int) -> list[PlannedRelease]:
        """The releases for a source of ``n_rows`` rows (pure; see ppipe.challenge.planning)."""
        return plan(self, n_rows)

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready dict that validates back into an equal challenge (stored in the ledger)."""
        spec = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        spec["releases"] = (
            self.releases if isinstance(self.releases, int) else [_fraction_to_json(p) for p in self.proportions]
        )
        spec["schedule"]["every"] = format_duration(self.schedule.every)
        spec["delivery"] = {
            "retries": self.delivery.retries,
            "retry_delay": format_duration(self.delivery.retry_delay),
            "timeout": format_duration(self.delivery.timeout),
        }
        return spec


def _check_scenario(challenge: Challenge) -> None:
    """The scenario's events name releases that exist (columns are checked against the source later)."""
    if challenge.scenario is None:
        return
    try:
        check_releases(challenge.scenario, [challenge.release_name(k) for k in range(challenge.release_count)],
                       challenge.output.row_id)
    except PpipeError as exc:
        raise ValueError(str(exc)) from None


def _fraction_to_json(p: Fraction) -> float | str:
    as_float = float(p)
    return as_float if Fraction(str(as_float)) == p else f"{p.numerator}/{p.denominator}"


def _rebuild() -> None:
    """A kind registered at runtime: rebuild the models whose schema lists the kinds."""
    for model in (Grant, Challenge):
        model.model_rebuild(force=True)


registry.on_change(_rebuild)
