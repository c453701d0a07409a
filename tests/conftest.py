"""Shared fixtures. Prefect runs quiet and offline; flows use one local API server per test session."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest


@pytest.fixture(scope="session")
def prefect_api():
    """One local Prefect API server (temporary database) for the whole session; its URL is exported so
    that `matchflow` subprocesses and Dask workers use it too."""
    from matchflow.prefect_env import local_api

    with local_api() as url:
        yield url


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on loopback; the standard AWS variables point every process (Dask workers too) at it."""
    from matchflow.storage.local_s3 import loopback_s3_env

    with loopback_s3_env() as url:
        yield url

