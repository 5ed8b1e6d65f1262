"""The participants' HTTP API (FastAPI, no Prefect): see :mod:`ppipe.participants.http.app`."""

from ppipe.participants.http.app import EXTRA_ROUTERS, create_app

__all__ = ["EXTRA_ROUTERS", "create_app"]
