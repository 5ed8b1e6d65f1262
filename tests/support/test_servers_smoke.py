import fsspec


def test_s3_roundtrip(s3_server, s3_bucket):
    fs = fsspec.filesystem("s3", endpoint_url=s3_server, key="testing", secret="testing")
    fs.pipe(f"{s3_bucket}/a.txt", b"hello")
    assert fs.cat(f"{s3_bucket}/a.txt") == b"hello"


def test_gcs_roundtrip(gcs_server, gcs_bucket):
    fs = fsspec.filesystem("gcs", endpoint_url=gcs_server, token="anon", project="test")
    fs.pipe(f"{gcs_bucket}/a.txt", b"hello")
    assert fs.cat(f"{gcs_bucket}/a.txt") == b"hello"
