"""Prefect credential blocks for the destinations, and how a block name is loaded.

Blocks: ppipe's own :func:`aws_block_class` (``ppipe-aws-credentials``) and
:func:`gcp_block_class` (``ppipe-gcp-credentials``), used when the name has no ``/``;
``"<block-type-slug>/<name>"`` loads any block with the same field names (e.g. prefect-aws's
``aws-credentials/<name>``, prefect-gcp's ``gcp-credentials/<name>``). The destinations read
the fields (``ppipe/destinations/<kind>/credentials.py``); :func:`install` gives them the
loader. Prefect is imported only when a block is used, so ``import ppipe`` stays light.
"""

from __future__ import annotations

import functools
from typing import Any

from ppipe.destinations import credentials

AWS_BLOCK_SLUG = "ppipe-aws-credentials"
GCP_BLOCK_SLUG = "ppipe-gcp-credentials"


@functools.cache
def aws_block_class():
    """ppipe's Prefect block for AWS keys (block type ``ppipe-aws-credentials``)."""
    from prefect.blocks.core import Block
    from pydantic import SecretStr

    class PpipeAwsCredentials(Block):
        """AWS access keys for ppipe's S3 destinations."""

        _block_type_slug = AWS_BLOCK_SLUG
        aws_access_key_id: str | None = None
        aws_secret_access_key: SecretStr | None = None
        aws_session_token: SecretStr | None = None
        profile_name: str | None = None
        region_name: str | None = None

    return PpipeAwsCredentials


@functools.cache
def gcp_block_class():
    """ppipe's Prefect block for a GCP service-account key (block type ``ppipe-gcp-credentials``)."""
    from prefect.blocks.core import Block
    from prefect.types import SecretDict

    class PpipeGcpCredentials(Block):
        """A service-account key (its JSON as a dict, or a file path) for ppipe's GCS destinations."""

        _block_type_slug = GCP_BLOCK_SLUG
        service_account_info: SecretDict | None = None
        service_account_file: str | None = None
        project: str | None = None

    return PpipeGcpCredentials


#: destination kind -> ppipe's block class for it
BLOCK_CLASSES = {"s3": aws_block_class, "gcs": gcp_block_class}


def load_block(name: str, kind: str) -> Any:
    """Load the Prefect block ``name`` (``slug/name`` for another block type). Raises on failure."""
    if "/" in name:
        from prefect.blocks.core import Block

        return Block.load(name)
    return BLOCK_CLASSES[kind]().load(name)


def install() -> None:
    """Make destinations load named credentials blocks from Prefect."""
    credentials.set_block_loader(load_block)
