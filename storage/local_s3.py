"""A loopback S3 endpoint for tests and benchmarks: a moto server on 127.0.0.1.

moto is a test extra (``pip install -e '.[test]'``), imported only when a server is started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator

#: Dummy credentials and region for the loopback server (moto accepts any).
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def loopback_s3_env() -> Iterator[str]:
    """A moto S3 server (``ThreadedMotoServer``) on a free loopback port, with the standard AWS variables of
    this process (and its children, Dask workers too) pointing at it; yields its endpoint URL. On exit the
    server stops and the variables are restored. s3fs's cached filesystems are dropped on entry and exit: one
    made for another server would call a dead port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": url, **TEST_CREDENTIALS}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    forget_s3_clients()
    try:
        yield url
    finally:
        server.stop()
        forget_s3_clients()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def forget_s3_clients() -> None:
    """Drop the S3 filesystems s3fs and fsspec keep per process (they hold the endpoint they were made with)."""
    from s3fs import S3FileSystem

    from matchflow.storage.fs import RetryingS3FileSystem

    S3FileSystem.clear_instance_cache()
    RetryingS3FileSystem.clear_instance_cache()
