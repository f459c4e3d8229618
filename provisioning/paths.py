"""URL patterns for the `<prefix>/<net>[/<farm>[/<extra>[/<kernel>]]]` family.

Nodes and documents in the field use every depth, with or without a trailing slash. Segments
match anything but "/" here; the views validate them, so a bad value gets a 400 with a reason
instead of a bare 404.
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import URLPattern, path

SEGMENTS = ("<str:net>", "<str:farm>", "<str:extra>", "<str:kernel>")


def boot_target_patterns(
    prefix: str, view: Callable, name: str, depths: int = len(SEGMENTS), **kwargs
) -> list[URLPattern]:
    """All eight patterns (four depths, trailing slash or not) for one prefix; `depths` stops
    earlier (the PXE kit takes no kernel segment)."""
    patterns = []
    for depth in range(1, depths + 1):
        route = f"{prefix}/" + "/".join(SEGMENTS[:depth])
        suffix = "" if depth == 1 else f"-{depth}"
        patterns.append(path(route, view, kwargs, name=f"{name}{suffix}"))
        patterns.append(path(route + "/", view, kwargs))
    return patterns
