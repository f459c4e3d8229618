"""sha256 of files, the one way: streamed in blocks, never whole in memory (kernels are
hundreds of MB), returning the size read alongside."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

BLOCK = 1024 * 1024


def sha256_stream(handle: BinaryIO) -> tuple[str, int]:
    """(hex digest, bytes read) of what is left to read in `handle`."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(BLOCK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_path(path: Path) -> tuple[str, int]:
    with Path(path).open("rb") as handle:
        return sha256_stream(handle)
