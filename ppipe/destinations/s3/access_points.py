"""S3 Access Points: where bucket-policy grants go once the bucket policy has no room left.

S3 caps a bucket policy at 20 KB: about 250 principals listed in a challenge's two read
statements. Past that, a ``bucket-policy`` grant goes to an access point of the organiser's
account on the bucket, ``ppipe-<challenge>-<digest>-<n>``, each with a 20 KB policy of its own
listing its principals in the same two read statements (on the access point's ARN). The bucket
policy delegates the challenge's reads to those access points once, with one fixed-size pair of
statements conditioned on ``s3:DataAccessPointAccount`` (the organiser's account) and
``s3:DataAccessPointArn`` (ppipe's access points of this challenge), as AWS documents for
delegating access control to access points: it does not grow with the participants.

A participant in an access point reads through its alias, ``s3://<alias>/<prefix>/`` (the AWS
CLI and SDKs take the alias where a bucket name goes); the grant says so and the ledger keeps
it for ``ppipe show``. Changes are made under the ledger's access lock on the bucket, as the
bucket policy's are, so two runs never overwrite each other's access point policies.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit

from ppipe.destinations.s3 import errors
from ppipe.errors import GrantRefused

POLICY_VERSION = "2012-10-17"
POLICY_LIMIT = 20 * 1024  # bytes: S3 refuses larger access point (and bucket) policies
READ_SID, LIST_SID = "PpipeRead", "PpipeList"


@dataclass
class AccessPoint:
    """One of ppipe's access points for a challenge, and the principals its policy lists."""

    name: str
    arn: str
    alias: str
    principals: set[str] = field(default_factory=set)

    def reads_at(self, prefix: str) -> str:
        """Where a participant in this access point reads the challenge's files."""
        return f"s3://{self.alias}/{prefix}".rstrip("/")


def policy_bytes(document: dict) -> int:
    """The size S3 counts for a policy document, as ppipe writes it (compact JSON)."""
    return len(json.dumps(document, separators=(",", ":")).encode())


def listed_principals(statements: list[dict], sid: str) -> set[str]:
    """The principals the statement ``sid`` names (none when there is no such statement)."""
    for statement in statements:
        if statement.get("Sid") == sid:
            named = (statement.get("Principal") or {}).get("AWS", [])
            return {named} if isinstance(named, str) else set(named)
    return set()


class AccessPoints:
    """A challenge's access points on its bucket (see the module doc); ``destination`` is the
    challenge's :class:`~ppipe.destinations.s3.client.S3Bucket` (not imported: it imports this)."""

    def __init__(self, destination):
        self.destination = destination

    # -- names and documents --------------------------------------------------------------

    @property
    def name_prefix(self) -> str:
        """``ppipe-<challenge, shortened>-<digest of bucket, challenge and prefix>-``: at most 39
        characters, so ``<name_prefix><n>`` is a valid access point name (3-50 of a-z, 0-9, -)."""
        where = self.destination
        hint = re.sub(r"[^a-z0-9]+", "-", where.challenge.lower()).strip("-")[:20].strip("-") or "c"
        digest = hashlib.sha256(f"{where.bucket}\n{where.challenge}\n{where.prefix}".encode()).hexdigest()[:10]
        return f"ppipe-{hint}-{digest}-"

    def delegation(self) -> list[dict]:
        """The bucket-policy statements letting this challenge's access points serve its reads."""
        where = self.destination
        only_ours = {"StringEquals": {"s3:DataAccessPointAccount": where.account_id},
                     "ArnLike": {"s3:DataAccessPointArn": f"arn:aws:s3:*:{where.account_id}:accesspoint/{self.name_prefix}*"}}
        statements = []
        for sid, statement in zip(where.delegation_ids(), where.read_statements()):
            condition = {**statement.get("Condition", {}), **only_ours}
            statements.append({"Sid": sid, "Principal": {"AWS": "*"}, **statement, "Condition": condition})
        return statements

    def document(self, point: AccessPoint, principals: set[str]) -> dict:
        """The access point's policy: the two read statements, on its ARN, for ``principals``."""
        prefix = self.destination.prefix
        objects = f"{point.arn}/object/{prefix}/*" if prefix else f"{point.arn}/object/*"
        who = {"AWS": sorted(principals)}
        listing = {"Sid": LIST_SID, "Effect": "Allow", "Principal": who, "Action": "s3:ListBucket", "Resource": point.arn}
        if prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}/*"]}}
        read = {"Sid": READ_SID, "Effect": "Allow", "Principal": who, "Action": "s3:GetObject", "Resource": objects}
        return {"Version": POLICY_VERSION, "Statement": [read, listing]}

    # -- the s3control client -------------------------------------------------------------

    @cached_property
    def control(self):
        where = self.destination
        made = where.access.boto3_session(where.region).client(
            "s3control", endpoint_url=where.spec.endpoint_url, config=where._config())
        if where.spec.endpoint_url:
            made.meta.events.register("before-sign.s3-control.*", self._to_endpoint)
        return made

    def _to_endpoint(self, request, **_) -> None:
        """boto3 puts the account id in front of the s3control host (``<account>.s3-control...``):
        right on AWS, a name that resolves nowhere for a store at ``endpoint_url``."""
        wanted = urlsplit(self.destination.spec.endpoint_url).netloc
        request.url = urlunsplit(urlsplit(request.url)._replace(netloc=wanted))

    def _calls(self):
        """Arguments every s3control call takes: the organiser's account."""
        return {"AccountId": self.destination.account_id}

    # -- reading --------------------------------------------------------------------------

    def listed(self) -> list[AccessPoint]:
        """This challenge's access points, by name, each with the principals its policy lists."""
        where = self.destination
        points, token = [], None
        with where._errors("list the bucket's access points"):
            while True:
                page = self.control.list_access_points(
                    **self._calls(), Bucket=where.bucket, MaxResults=1000, **({"NextToken": token} if token else {}))
                points += [AccessPoint(p["Name"], p["AccessPointArn"], p.get("Alias", p["Name"]))
                           for p in page.get("AccessPointList", []) if self._ours(p["Name"])]
                token = page.get("NextToken")
                if not token:
                    break
            for point in points:
                point.principals = self._principals(point)
        return sorted(points, key=lambda p: self._index(p.name))

    def _ours(self, name: str) -> bool:
        return name.startswith(self.name_prefix) and name[len(self.name_prefix):].isdigit()

    def _index(self, name: str) -> int:
        return int(name[len(self.name_prefix):])

    def _principals(self, point: AccessPoint) -> set[str]:
        from botocore.exceptions import ClientError

        try:
            text = self.control.get_access_point_policy(**self._calls(), Name=point.name)["Policy"]
        except ClientError as exc:
            if errors.code_of(exc) == "NoSuchAccessPointPolicy":
                return set()
            raise
        statements = json.loads(text).get("Statement", [])
        return listed_principals([statements] if isinstance(statements, dict) else statements, READ_SID)

    # -- changing -------------------------------------------------------------------------

    def add(self, principal: str, points: list[AccessPoint]) -> AccessPoint:
        """Put ``principal`` in the first of ``points`` with room for it, or in a new access point."""
        for point in points:
            if principal in point.principals:
                return point
        for point in points:
            if policy_bytes(self.document(point, point.principals | {principal})) <= POLICY_LIMIT:
                return self._write(point, point.principals | {principal})
        taken = {self._index(p.name) for p in points}
        return self._write(self._create(min(set(range(len(taken) + 1)) - taken)), {principal})

    def remove(self, principal: str, points: list[AccessPoint]) -> list[AccessPoint]:
        """Take ``principal`` out of every one of ``points`` listing it (an emptied access point
        is deleted); the access points left."""
        left = []
        for point in points:
            if principal not in point.principals:
                left.append(point)
            elif point.principals == {principal}:
                with self.destination._errors(f"delete access point {point.name}"):
                    self.control.delete_access_point(**self._calls(), Name=point.name)
            else:
                left.append(self._write(point, point.principals - {principal}))
        return left

    def _create(self, index: int) -> AccessPoint:
        where = self.destination
        name = f"{self.name_prefix}{index}"
        owner = {} if where.spec.endpoint_url else {"BucketAccountId": where.account_id}  # never on another's bucket
        with where._errors(f"create access point {name}"):
            made = self.control.create_access_point(**self._calls(), Name=name, Bucket=where.bucket, **owner)
        return AccessPoint(name, made["AccessPointArn"], made.get("Alias", name))

    def _write(self, point: AccessPoint, principals: set[str]) -> AccessPoint:
        document = self.document(point, principals)
        if policy_bytes(document) > POLICY_LIMIT:  # one principal longer than a whole policy
            raise GrantRefused(self.destination.uri, f"access point policy of {point.name} would be over S3's "
                                                     f"{POLICY_LIMIT} bytes")
        with self.destination._errors(f"write the policy of access point {point.name}"):
            self.control.put_access_point_policy(
                **self._calls(), Name=point.name, Policy=json.dumps(document, separators=(",", ":")))
        point.principals = set(principals)
        return point
