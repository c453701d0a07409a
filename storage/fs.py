"""Filesystem access for local paths and ``s3://`` URLs through fsspec.

Local paths are used as plain paths (no ``file://``); S3 goes through s3fs with the given storage
options, or the standard AWS environment and config files when none are given. Credentials never
leave the ``storage_options`` mapping: nothing here logs them.

Retries of S3 requests (transient errors and slowness). Every ``s3://`` access of the project (tables,
manifests, locks, corpus listing and video reads, and Zarr, which opens its store through the fsspec
registry) goes through :class:`RetryingS3FileSystem`, registered for the ``s3`` protocol when this
module is imported. It retries in two layers, per request, before an error reaches the caller:

1. botocore, in its ``standard`` retry mode with ``total_max_attempts`` = :data:`S3_MAX_ATTEMPTS` (5: the
   request and up to 4 retries) on HTTP 500/502/503/504, throttling codes (``SlowDown``), timeouts and
   connection errors, with exponential backoff and full jitter (waits of up to 1, 2, 4, 8 s);
2. s3fs, which repeats the whole call up to ``S3FileSystem.retries`` (5) times when it still ends in
   ``SlowDown`` or a network error (socket timeout, incomplete read), waiting 0.1 s x 1.7**i.

A persistent ``InternalError`` therefore fails after 5 requests (about 7.5 s of backoff on average,
15 s at most), a persistent ``SlowDown`` after at most 25. Storage options that set
``config_kwargs["retries"]``, or ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE`` in the environment, replace the
botocore layer's defaults. Above these, a chunk task whose write still fails is re-run whole by
Prefect (``retries`` of the configuration). An error that remains names the ``s3://`` object it was
about (``OSError.filename``).
"""

from __future__ import annotations

import errno
import os
import posixpath
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from s3fs import S3FileSystem

#: Attempts per S3 request in botocore's retry layer (the first one included).
S3_MAX_ATTEMPTS = 5
#: botocore retry configuration of every S3 client of the project (unless overridden, see above).
S3_RETRIES: dict[str, Any] = {"total_max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"}

_ERRNO = {FileNotFoundError: errno.ENOENT, FileExistsError: errno.EEXIST, PermissionError: errno.EACCES}


def _with_path(exc: BaseException, url: str) -> BaseException:
    """``exc`` (same type) with ``url`` as its ``filename``, so that its message names the object."""
    if not isinstance(exc, OSError) or exc.filename:
        return exc
    if exc.errno is not None and exc.strerror is not None:
        exc.filename = url
        return exc
    try:
        named = type(exc)(_ERRNO.get(type(exc), errno.EIO), str(exc) or type(exc).__name__, url)
    except TypeError:  # an OSError subclass with another signature: leave it as it is
        return exc
    named.__cause__ = exc.__cause__ or exc
    return named


class RetryingS3FileSystem(S3FileSystem):
    """s3fs with the project's botocore retry policy (:data:`S3_RETRIES`) and errors naming the object."""

    def __init__(self, *args: Any, config_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config_kwargs = dict(config_kwargs or {})
        if "retries" not in config_kwargs and not (
            os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE")
        ):
            config_kwargs["retries"] = dict(S3_RETRIES)
        super().__init__(*args, config_kwargs=config_kwargs, **kwargs)

    async def _call_s3(self, method: str, *akwarglist: Any, **kwargs: Any) -> Any:
        try:
            return await super()._call_s3(method, *akwarglist, **kwargs)
        except OSError as exc:
            bucket = kwargs.get("Bucket", "")
            key = kwargs.get("Key") or kwargs.get("Prefix") or ""
            named = _with_path(exc, f"s3://{bucket}/{key}".rstrip("/"))
            if named is exc:
                raise
            raise named from named.__cause__


fsspec.register_implementation("s3", RetryingS3FileSystem, clobber=True)


def is_remote(url: str) -> bool:
    """True for URLs with a protocol other than the local filesystem (``s3://...``)."""
    return "://" in url and not url.startswith("file://")


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem that serves ``url`` (for ``s3://``, a :class:`RetryingS3FileSystem`)."""
    if is_remote(url):
        protocol = url.split("://", 1)[0]
        return fsspec.filesystem(protocol, **(storage_options or {}))
    return LocalFileSystem()


def normalize(url: str) -> str:
    """A URL without trailing slash; local paths made absolute (``file://`` stripped)."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if is_remote(url):
        return url.rstrip("/")
    return os.path.abspath(os.path.expanduser(url))


def join(base: str, *parts: str) -> str:
    """Join path parts with '/' (works for URLs and POSIX paths)."""
    return posixpath.join(base, *parts)


def strip_protocol(url: str) -> str:
    """The path part of a URL as fsspec filesystems expect it (``bucket/key`` for S3)."""
    return url.split("://", 1)[1] if is_remote(url) else url


def write_bytes_atomic(url: str, data: bytes, storage_options: dict[str, Any] | None = None) -> None:
    """Write ``data`` so that readers see either the old file or the whole new one.

    Local: write a temporary file beside it, fsync, rename. S3: a single PUT is atomic.
    """
    if is_remote(url):
        fs = filesystem(url, storage_options)
        fs.pipe_file(strip_protocol(url), data)
        return
    os.makedirs(os.path.dirname(url), exist_ok=True)
    tmp = f"{url}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, url)


def read_bytes(url: str, storage_options: dict[str, Any] | None = None) -> bytes:
    """The whole content of a file; FileNotFoundError when it does not exist."""
    fs = filesystem(url, storage_options)
    return fs.cat_file(strip_protocol(url))


def exists(url: str, storage_options: dict[str, Any] | None = None) -> bool:
    return filesystem(url, storage_options).exists(strip_protocol(url))


def remove_tree(url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Delete a folder (or prefix) and everything under it; nothing to do when it is absent."""
    fs = filesystem(url, storage_options)
    path = strip_protocol(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    if is_remote(url):
        fs.invalidate_cache()


def list_files(url: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Every file under ``url`` (recursive), as URLs of the same form as ``url``; [] when absent."""
    fs = filesystem(url, storage_options)
    path = strip_protocol(url)
    if is_remote(url):
        fs.invalidate_cache()
    if not fs.exists(path):
        return []
    found = fs.find(path)
    if is_remote(url):
        protocol = url.split("://", 1)[0]
        return [f"{protocol}://{p}" for p in found]
    return found
