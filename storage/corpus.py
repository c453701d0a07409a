"""Listing a corpus: which games it holds and which video is each half.

A corpus is a local folder or an ``s3://bucket/prefix``. A game is a folder holding its halves as
``1_*.mkv|mp4`` and ``2_*.mkv|mp4``; a folder with a single video whose name has no half prefix is a
one-half game. When a half exists in several resolutions (``1_720p.mkv``, ``1_224p.mkv``) the highest
is used unless configured otherwise. The game key is the folder's path relative to the corpus root.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from matchflow.storage import fs

VIDEO_EXTENSIONS = (".mkv", ".mp4")
_HALF_RE = re.compile(r"^([12])_.+\.(mkv|mp4)$", re.IGNORECASE)
_RES_RE = re.compile(r"(\d{3,4})p", re.IGNORECASE)

#: How to lay out a corpus, for error messages.
LAYOUT_HINT = (
    "lay a corpus out as one folder per game holding its halves as 1_<name>.mkv|mp4 and 2_<name>.mkv|mp4 "
    "(SoccerNet: league/season/game/1_720p.mkv, 2_720p.mkv), or one video per folder for a one-half game"
)


@dataclass(frozen=True)
class Game:
    """One game of the corpus. ``halves`` maps half number (1, 2) to the video URL or path."""

    key: str
    game_id: str
    halves: dict[int, str] = field(default_factory=dict)
    error: str | None = None  # set when the folder cannot be read as a game (the game then fails)


def game_id(key: str) -> str:
    """A filesystem-safe, stable id for a game key: a readable slug plus a hash of the exact key.

    Only ``[A-Za-z0-9._-]`` survive, never a leading dot, at most 60 characters before the hash, so an id
    can never name a parent folder or escape the output root, whatever the key holds.
    """
    ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_key).strip("._-")[:60].strip("._-")
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}" if slug else digest


def _resolution(name: str) -> int:
    m = _RES_RE.search(name)
    return int(m.group(1)) if m else -1


def _pick(candidates: list[str], resolution: Literal["highest", "lowest"] | int) -> str | None:
    """Choose among the videos of one half by the resolution their names carry (``720p``)."""
    by_res = sorted(candidates, key=lambda p: (_resolution(posixpath.basename(p)), posixpath.basename(p)))
    if resolution == "highest":
        return by_res[-1]
    if resolution == "lowest":
        return by_res[0]
    exact = [p for p in by_res if _resolution(posixpath.basename(p)) == resolution]
    return exact[0] if exact else None


def _game_from_folder(
    key: str, videos: list[str], resolution: Literal["highest", "lowest"] | int
) -> Game:
    gid = game_id(key)
    per_half: dict[int, list[str]] = {}
    loose: list[str] = []
    for v in videos:
        m = _HALF_RE.match(posixpath.basename(v))
        if m:
            per_half.setdefault(int(m.group(1)), []).append(v)
        else:
            loose.append(v)
    if not per_half:
        if len(loose) == 1:
            return Game(key, gid, {1: loose[0]})
        names = ", ".join(sorted(posixpath.basename(v) for v in loose))
        return Game(key, gid, {}, error=(
            f"game folder {key!r} holds several videos without a half prefix: {names}; {LAYOUT_HINT}"))
    halves: dict[int, str] = {}
    for half, cands in sorted(per_half.items()):
        chosen = _pick(cands, resolution)
        if chosen is None:
            names = ", ".join(sorted(posixpath.basename(v) for v in cands))
            return Game(key, gid, {}, error=f"game {key!r} half {half} has no {resolution}p video (found {names})")
        halves[half] = chosen
    return Game(key, gid, halves)


@dataclass(frozen=True)
class Corpus:
    """What a corpus holds: its games (sorted by key) and the folders left out, with why (path relative to the
    corpus root -> reason)."""

    games: list[Game]
    left_out: dict[str, str] = field(default_factory=dict)


#: Why a folder of the corpus is not read as games.
HIDDEN = "hidden (its name starts with '.'): left out, as version-control and system folders are"
SYMLINK = ("a symbolic link to a folder: not followed (links can leave the corpus or loop); list its target as a "
           "corpus of its own, or move the folder in")


def scan_corpus(
    corpus: str,
    storage_options: dict[str, Any] | None = None,
    resolution: Literal["highest", "lowest"] | int = "highest",
) -> Corpus:
    """All games under ``corpus`` and the folders left out: hidden ones (``.name``) that hold videos, and
    symbolic links to folders (never followed).

    Raises FileNotFoundError when the corpus does not exist and ValueError when it holds no video.
    """
    root = fs.normalize(corpus)
    filesystem = fs.filesystem(root, storage_options)
    root_path = fs.strip_protocol(root)
    if fs.is_remote(root):
        filesystem.invalidate_cache()
    if not filesystem.exists(root_path):
        raise FileNotFoundError(f"corpus {corpus} does not exist")
    prefix = f"{root.split('://', 1)[0]}://" if fs.is_remote(root) else ""
    folders: dict[str, list[str]] = {}
    left_out: dict[str, str] = {}
    seen = 0
    for path, info in sorted(filesystem.find(root_path, withdirs=True, detail=True).items()):
        rel = posixpath.relpath(path, root_path)
        parts = rel.split("/")
        hidden = next((i for i, p in enumerate(parts) if p.startswith(".")), None)
        kind = info.get("type")
        if info.get("islink"):  # a link to a file is read as the file; a link to a folder is not followed
            kind = "link-folder" if filesystem.isdir(path) else "file"
        is_video = rel.lower().endswith(VIDEO_EXTENSIONS) and kind == "file"
        if hidden is not None:
            if is_video:
                left_out.setdefault("/".join(parts[: hidden + 1]), HIDDEN)
            continue
        if kind == "link-folder":
            left_out[rel] = SYMLINK
            continue
        if kind == "directory":
            continue
        if not is_video:
            seen += 1
            continue
        folder = posixpath.dirname(rel) or "."
        folders.setdefault(folder, []).append(prefix + path)
    if not folders:
        also = "; left out: " + ", ".join(f"{k} ({v.split(':')[0]})" for k, v in left_out.items()) if left_out else ""
        raise ValueError(f"corpus {corpus} holds no .mkv or .mp4 video, so no game: looked for "
                         f"{' and '.join('*' + e for e in VIDEO_EXTENSIONS)} files in it and in all its folders "
                         f"({seen} other file(s) seen){also}; {LAYOUT_HINT}")
    games = []
    for folder, videos in folders.items():
        key = posixpath.basename(root_path.rstrip("/")) if folder == "." else folder
        games.append(_game_from_folder(key, sorted(videos), resolution))
    return Corpus(sorted(games, key=lambda g: g.key), left_out)


def list_games(
    corpus: str,
    storage_options: dict[str, Any] | None = None,
    resolution: Literal["highest", "lowest"] | int = "highest",
) -> list[Game]:
    """All games under ``corpus``, sorted by key (see :func:`scan_corpus` for what is left out)."""
    return scan_corpus(corpus, storage_options, resolution).games
