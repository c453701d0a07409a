"""Filesystem access for local paths and ``s3://`` URLs through fsspec.

Local paths are used as plain paths (no ``file://``); S3 goes through s3fs with the given storage
options, or the standard AWS environment and config files when none are given. Credentials never
leave the ``storage_options`` mapping: nothing here logs them.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


def is_remote(url: str) -> bool:
    """True for URLs with a protocol other than the local filesystem (``s3://...``)."""
    return "://" in url and not url.startswith("file://")


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem that serves ``url``."""
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
