"""iPXE as shipped: a copy of one binary, nothing embedded."""

from __future__ import annotations

from pathlib import Path

from .parts import BuildFunction, media_builder
from .toolchain import Toolchain, place


def plain(attribute: str) -> BuildFunction:
    """Builder for iPXE as shipped: a copy of one binary, the script is not used."""

    def build(script: bytes, dest: Path, workdir: Path, tc: Toolchain) -> None:
        place(dest, getattr(tc, attribute))

    build.__doc__ = f"Copy of the toolchain's {attribute}, nothing embedded."
    return media_builder(build, embeds_script=False)
