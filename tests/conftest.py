"""Shared fixtures. Prefect runs quiet and offline; flows use one local API server per test session."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest  # noqa: E402


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
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _forget_s3_clients()  # s3fs caches its filesystems: one made for an earlier server would call a dead port
    try:
        yield env["AWS_ENDPOINT_URL"]
    finally:
        server.stop()
        _forget_s3_clients()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _forget_s3_clients() -> None:
    """Drop the S3 filesystems s3fs and fsspec keep per process (they hold the endpoint they were made with)."""
    from s3fs import S3FileSystem

    from matchflow.storage.fs import RetryingS3FileSystem

    S3FileSystem.clear_instance_cache()
    RetryingS3FileSystem.clear_instance_cache()
