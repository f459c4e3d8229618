"""The front server's configuration: setup/nginx/ rendered with this deployment's paths.

One site config serves both uses: `make run` embeds it in an nginx of its own (pid, logs and
temp files under the run directory), and a production host includes it in the system's nginx
(`manage.py nginx_config --site`). Its internal locations point at the stores the service
names in `X-Accel-Redirect` (`provisioning.delivery`).
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from .delivery import INTERNAL_PREFIX, store_root

TEMPLATES = Path(settings.BASE_DIR) / "setup" / "nginx"

# Values go into nginx's own syntax: refuse anything that could end a directive or a block.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_./:@\[\]-]+")


def _checked(name: str, value: str) -> str:
    if not _SAFE_VALUE.fullmatch(value):
        raise ValueError(f"{name} cannot go into an nginx config as is: {value!r}")
    return value


def _fill(template: str, values: dict[str, str]) -> str:
    text = (TEMPLATES / template).read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    leftover = re.search(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"{template}: no value for {leftover.group()}")
    return text


def site_config(listen: str, upstream: str) -> str:
    """The `upstream` + `server` blocks, self-contained (the file snippet is inlined)."""
    snippet = (TEMPLATES / "zosboot-file.conf").read_text().strip()
    indented = "\n".join(f"        {line}" if line else "" for line in snippet.splitlines())
    text = (TEMPLATES / "zosboot-site.conf").read_text()
    text = text.replace("        include @SNIPPET@;", indented)
    values = {
        "LISTEN": _checked("listen address", listen),
        "UPSTREAM": _checked("upstream", upstream),
        "KERNELS_DIR": _checked("ZOSBOOT_KERNELS_DIR", str(store_root("kernels").resolve())),
        "ARTIFACTS_DIR": _checked("ZOSBOOT_ARTIFACTS_DIR", str(store_root("artifacts").resolve())),
    }
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    assert INTERNAL_PREFIX in text, "the site config must name the service's internal prefix"
    return text


def write_embedded(listen: str, upstream: str, user: str | None) -> Path:
    """Write the embedded nginx.conf and its site under the run directory; its path."""
    run_dir = Path(settings.ZOSBOOT_RUN_DIR).resolve()
    log_dir = Path(settings.ZOSBOOT_DATA_DIR).resolve() / "log"
    for directory in (run_dir / "nginx-tmp", log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    site = run_dir / "nginx-site.conf"
    site.write_text(site_config(listen, upstream))
    main = run_dir / "nginx.conf"
    main.write_text(
        _fill(
            "nginx.conf",
            {
                "USER": f"user {_checked('user', user)};" if user else "",
                "RUN_DIR": _checked("ZOSBOOT_RUN_DIR", str(run_dir)),
                "LOG_DIR": _checked("log directory", str(log_dir)),
                "SITE": str(site),
            },
        )
    )
    return main
