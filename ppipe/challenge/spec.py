"""The challenge model: what a course organiser declares, validated once, in Python or YAML.

Pure: nothing here touches the network, the ledger or Prefect. Relative paths in a YAML
file are resolved against the file's folder (pass ``base_dir`` in the validation context).
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ppipe import naming

if TYPE_CHECKING:
    from ppipe.challenge.planning import PlannedRelease

SourceFormat = Literal["csv", "tsv", "parquet", "json", "ndjson"]
OutputFormat = Literal["csv", "parquet", "json", "ndjson"]
Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$"),
    Field(description="lowercase letters, digits and hyphens, 1-50 characters, no leading/trailing hyphen"),
]

# Storage-option keys that would carry a secret: they belong in the environment, a profile
# or a Prefect block, never in a challenge file (which is stored in the ledger and shown).
SECRET_OPTION_KEYS = {
    "key", "secret", "token", "password", "aws_access_key_id", "aws_secret_access_key",
    "aws_session_token", "session_token", "access_key", "secret_key", "client_secret",
    "private_key", "credentials",
}


class Model(BaseModel):
    """Strict base: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _base_dir(info: ValidationInfo) -> Path:
    return Path((info.context or {}).get("base_dir") or Path.cwd())


def _no_secret_options(options: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Refuse secret-looking keys at any depth (client_kwargs, config_kwargs, ...)."""
    for key, value in options.items():
        if str(key).lower() == "token" and _is_token_reference(value):
            continue
        if str(key).lower() in SECRET_OPTION_KEYS:
            raise ValueError(
                f"'{path}{key}' is a secret: set it in the environment, a profile or a Prefect block, "
                "not in the challenge file"
            )
        if isinstance(value, dict):
            _no_secret_options(value, f"{path}{key}.")
    return options


def _is_token_reference(value: Any) -> bool:
    """gcsfs's ``token`` may name a method ("anon", "google_default") or a key file: not secrets."""
    return isinstance(value, str) and (
        value in ("anon", "google_default", "cloud", "cache", "browser") or value.endswith(".json")
    )


def _absolute(path: Path, info: ValidationInfo) -> Path:
    """``path`` made absolute against the challenge file's folder; a symlink loop is an error."""
    path = path.expanduser()
    try:
        return path if path.is_absolute() else (_base_dir(info) / path).resolve()
    except RuntimeError:  # Python 3.11 raises RuntimeError on a symlink loop
        raise ValueError(f"{str(path)!r} cannot be read: it is a loop of symbolic links") from None
    except OSError as exc:
        raise ValueError(f"{str(path)!r} cannot be read: {exc.strerror or exc}") from None


# --- durations -----------------------------------------------------------------------------

_COMPACT = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_timedelta = TypeAdapter(timedelta)


def parse_duration(value: Any) -> timedelta:
    """``"90s"``, ``"6h"``, ``"1d"``, ``"1h30m"``, ISO 8601 (``"PT6H"``) or seconds -> timedelta.

    Pydantic already parses ISO 8601 and numbers; the compact form is ours (a few lines, no
    well-kept library offers exactly this grammar without extra baggage).
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("-") and len(text) > 1:
            return -parse_duration(text[1:])
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return timedelta(seconds=float(text))
        if text and _COMPACT.sub("", text).strip() == "":
            return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _COMPACT.findall(text)))
    if isinstance(value, bool):
        raise ValueError("a duration, such as '90s', '6h', '1d', 'PT6H' or a number of seconds")
    try:
        return _timedelta.validate_python(value)
    except Exception:
        raise ValueError(
            f"{value!r} is not a duration: use '90s', '6h', '1d', ISO 8601 such as 'PT6H', or seconds"
        ) from None


def format_duration(delta: timedelta) -> str:
    """The compact form of a duration (``"1d"``, ``"90s"``), the inverse of parse_duration."""
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{delta.total_seconds():g}s"


def positive_duration(value: Any, what: str) -> timedelta:
    delta = parse_duration(value)
    if delta <= timedelta(0):
        raise ValueError(f"{what} must be greater than zero")
    return delta


# --- source --------------------------------------------------------------------------------

_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson",
}
_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "https://", "http://")


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
        if url.startswith("file://"):
            url = url[len("file://"):]
        if "://" not in url:
            url = str(_absolute(Path(url), info))
        return url

    @field_validator("storage_options")
    @classmethod
    def _no_secrets(cls, options: dict[str, Any]) -> dict[str, Any]:
        return _no_secret_options(options)

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
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("has no timezone: write it with one, such as 2026-12-01T09:00:00Z or +01:00")
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO 8601 date-time such as 2026-12-01T09:00:00Z") from None
            if parsed.tzinfo is None:
                raise ValueError("has no timezone: write it with one, such as 2026-12-01T09:00:00Z or +01:00")
            return parsed
        return value

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return positive_duration(value, "the interval")

    def time_of(self, index: int) -> datetime:
        return self.start + index * self.every


# --- destinations --------------------------------------------------------------------------


class _Destination(Model):
    kind: ClassVar[str]

    def location(self, challenge: str) -> str:
        """The URI where this challenge's releases go (derived names included)."""
        raise NotImplementedError


class LocalDestination(_Destination):
    """A local or shared folder; releases go to ``<path>/<folder>/``."""

    kind: Literal["local"] = "local"
    path: Path = Field(description="The folder (relative paths are relative to the challenge file).")
    folder: str | None = Field(default=None, description="Sub-folder for this challenge; defaults to its name.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path, info: ValidationInfo) -> Path:
        return _absolute(path, info)

    @field_validator("folder")
    @classmethod
    def _folder(cls, folder: str | None) -> str | None:
        return None if folder is None else naming.check_folder_name(folder)

    def location(self, challenge: str) -> str:
        return str(self.path / (self.folder or challenge))


class _BucketDestination(_Destination):
    """What S3 and GCS destinations share: a bucket (derived if omitted) and a prefix per challenge."""

    scheme: ClassVar[str]
    bucket: str | None = Field(default=None, description="Bucket name; derived from the challenge name when omitted.")
    endpoint_url: str | None = Field(default=None, description="For compatible stores, emulators and test servers.")
    prefix: str | None = Field(default=None, description="Key prefix for this challenge; defaults to its name.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str | None) -> str | None:
        return None if prefix is None else naming.check_prefix(prefix)

    def bucket_for(self, challenge: str) -> str:
        return self.bucket or naming.derive_bucket(challenge)

    def prefix_for(self, challenge: str) -> str:
        return self.prefix if self.prefix is not None else challenge

    def location(self, challenge: str) -> str:
        return f"{self.scheme}://{self.bucket_for(challenge)}/{self.prefix_for(challenge)}".rstrip("/")


class S3Destination(_BucketDestination):
    """An S3 (or S3-compatible) bucket; releases go under a prefix per challenge."""

    scheme: ClassVar[str] = "s3"
    kind: Literal["s3"] = "s3"
    region: str | None = Field(default=None, description="Region to create the bucket in (e.g. eu-west-1).")
    profile: str | None = Field(default=None, description="AWS profile to use (credentials stay in ~/.aws).")
    credentials_block: str | None = Field(
        default=None, description="Name of a Prefect block holding the AWS keys (see ppipe.destinations.credentials)."
    )

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, bucket: str | None) -> str | None:
        return None if bucket is None else naming.check_s3_bucket(bucket)


class GcsDestination(_BucketDestination):
    """A Google Cloud Storage bucket; releases go under a prefix per challenge."""

    scheme: ClassVar[str] = "gs"
    kind: Literal["gcs"] = "gcs"
    project: str | None = Field(default=None, description="Project that owns a bucket ppipe creates.")
    location_: str | None = Field(default=None, alias="location", description="Bucket location, e.g. EU.")
    credentials_block: str | None = Field(default=None, description="Name of a Prefect block holding a GCP key.")

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, bucket: str | None) -> str | None:
        return None if bucket is None else naming.check_gcs_bucket(bucket)


class DriveDestination(_Destination):
    """A Google Drive folder per challenge, under a parent folder the organiser owns."""

    kind: Literal["drive"] = "drive"
    parent: str = Field(description="Id of the Drive folder under which the challenge folder is made.")
    folder: str | None = Field(default=None, description="Title of the challenge folder; defaults to challenge_<name>.")
    service_account_file: str | None = Field(
        default=None,
        description="Path of a service-account key file (or set PPIPE_DRIVE_SERVICE_ACCOUNT_FILE / "
        "GOOGLE_APPLICATION_CREDENTIALS). Only the path is stored, never the key.",
    )

    @field_validator("parent")
    @classmethod
    def _parent(cls, parent: str) -> str:
        return naming.check_drive_id(parent)

    @field_validator("folder")
    @classmethod
    def _folder(cls, folder: str | None) -> str | None:
        return None if folder is None else naming.check_folder_name(folder)

    def folder_for(self, challenge: str) -> str:
        return self.folder or f"challenge_{challenge}"

    def location(self, challenge: str) -> str:
        return f"drive://{self.parent}/{self.folder_for(challenge)}"


DestinationSpec = Annotated[
    Union[LocalDestination, S3Destination, GcsDestination, DriveDestination],
    Field(discriminator="kind"),
]
DESTINATION_KINDS = ("local", "s3", "gcs", "drive")


# --- grants --------------------------------------------------------------------------------

ROLES = {
    "s3": {"reader"},
    "gcs": {"reader"},  # or any roles/... name
    "drive": {"reader", "commenter", "writer"},
}


class Grant(Model):
    """Read access for one participant on every destination of one service."""

    service: Literal["s3", "gcs", "drive"] = Field(description="s3, gcs or drive.")
    via: Literal["bucket-policy", "iam-user-policy"] | None = Field(
        default=None, description="s3 only: bucket-policy (default) or iam-user-policy."
    )
    identity: str = Field(
        description="s3: an IAM ARN or 12-digit account id (bucket-policy) or an IAM user name "
        "(iam-user-policy); gcs: user:/group:/serviceAccount: member or an e-mail; drive: an e-mail."
    )
    role: str = Field(default="reader", description="reader by default; drive also commenter/writer; gcs roles/...")
    notify: bool = Field(default=False, description="drive only: send Drive's notification e-mail.")

    @field_validator("identity")
    @classmethod
    def _identity(cls, identity: str, info: ValidationInfo) -> str:
        service = info.data.get("service")
        if service is None:
            return identity
        return naming.check_identity(service, identity, info.data.get("via") or "bucket-policy")

    @field_validator("role")
    @classmethod
    def _role(cls, role: str, info: ValidationInfo) -> str:
        service = info.data.get("service")
        if service in ROLES and role not in ROLES[service] and not (service == "gcs" and role.startswith("roles/")):
            raise ValueError(f"{role!r} is not allowed for {service}: use {', '.join(sorted(ROLES[service]))}")
        return role

    @model_validator(mode="after")
    def _check(self) -> Grant:
        if self.via is not None and self.service != "s3":
            raise ValueError("via: applies to s3 grants only")
        if self.notify and self.service != "drive":
            raise ValueError("notify: applies to drive grants only")
        if self.service == "s3" and self.via is None:
            object.__setattr__(self, "via", "bucket-policy")
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

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

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
        from ppipe.challenge.planning import plan

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

    # -- conveniences over the Python API -------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path) -> Challenge:
        from ppipe.challenge.specfile import load_challenge

        return load_challenge(path)

    def create(self, **kwargs: Any):
        """Register in the ledger (counts the source rows); see ppipe.api.create."""
        from ppipe import api

        return api.create(self, **kwargs)

    def deploy(self, **kwargs: Any):
        """Publish as a Prefect deployment (against PREFECT_API_URL, else the standing local
        server, started if needed); returns the deployment id. See ppipe.orchestration.deploy.deploy."""
        from ppipe.orchestration import server
        from ppipe.orchestration.deploy import deploy

        with server.connect():
            return deploy(self, **kwargs)


def _fraction_to_json(p: Fraction) -> float | str:
    as_float = float(p)
    return as_float if Fraction(str(as_float)) == p else f"{p.numerator}/{p.denominator}"
