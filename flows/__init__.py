"""Prefect flows of ppipe: ``flows/dispatch.py`` delivers a challenge's due releases."""
