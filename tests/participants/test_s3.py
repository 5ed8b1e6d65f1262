"""A participant on S3: `participant add --s3 USER` grants read access through the grant machinery (moto with
IAM enforced); the participant reads release and prediction features with their own key, answers over HTTP,
and loses access when revoked."""

from __future__ import annotations

import io
import json
import uuid

import boto3
import polars as pl
import pytest
from botocore.exceptions import ClientError

from ppipe import settings
from ppipe.participants import service
from tests.participants.conftest import client, deliver, make_challenge
from tests.destinations.test_s3_access import REGION, auth_server, organiser  # noqa: F401 - fixtures: moto with IAM enforced


@pytest.mark.parametrize("api_server", ["sqlite"], indirect=True)
def test_participant_reads_from_s3_with_their_granted_identity(api, auth_server, organiser, tmp_path):  # noqa: F811
    base, ledger = api
    bucket = f"ppipe-part-{uuid.uuid4().hex[:8]}"
    challenge = make_challenge(tmp_path, ledger, destinations=[
        {"kind": "local", "path": str(tmp_path / "out")},
        {"kind": "s3", "bucket": bucket, "endpoint_url": auth_server, "region": REGION}])
    added = service.add(challenge.name, "erin", s3="erin", ledger=ledger)
    assert any(line.startswith(f"granted erin on s3://{bucket}") for line in added.grants), added.grants
    deliver(ledger, challenge.name)

    key = json.loads((settings.home() / "credentials" / challenge.name / "erin.json").read_text())
    erin = boto3.client("s3", endpoint_url=auth_server, region_name=REGION,
                        aws_access_key_id=key["aws_access_key_id"], aws_secret_access_key=key["aws_secret_access_key"])
    prefix = challenge.name
    release = pl.read_parquet(io.BytesIO(erin.get_object(Bucket=bucket, Key=f"{prefix}/release_0.parquet")["Body"].read()))
    features = pl.read_parquet(io.BytesIO(erin.get_object(Bucket=bucket, Key=f"{prefix}/predict_1.parquet")["Body"].read()))
    manifest = json.loads(erin.get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read())
    assert "label" not in features.columns and manifest["predictions"][0]["file"] == "predict_1.parquet"

    with client(base, added.token) as http:
        assert http.get("/v1/me").json()["storage"] == [
            {"service": "s3", "destination": f"s3://{bucket}/{challenge.name}", "read_at": f"s3://{bucket}/{challenge.name}"}]
        requests = http.get("/v1/requests").json()
        validation = next(r for r in requests if r["kind"] == "validation")
        rows = release.filter(pl.col("row_id").is_in(validation["row_ids"]))
        judged = http.put(f"/v1/requests/{validation['id']}/answer", content=rows.write_csv(),
                          headers={"Content-Type": "text/csv"}).json()
        assert judged["status"] == "correct"
        prediction = next(r for r in requests if r["kind"] == "prediction")
        assert any(uri.startswith(f"s3://{bucket}/") for uri in prediction["features"].values())
        answer = features.select("row_id", pl.lit("a").alias("prediction"))
        assert http.put(f"/v1/requests/{prediction['id']}/answer",
                        json={"predictions": answer.to_dicts()}).json()["status"] == "pending"

    service.revoke(challenge.name, "erin", ledger=ledger)
    with pytest.raises(ClientError) as denied:
        erin.get_object(Bucket=bucket, Key=f"{prefix}/release_0.parquet")
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "InvalidAccessKeyId")  # revoking drops its key too
