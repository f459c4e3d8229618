"""The front server's configuration: setup/nginx/ rendered with this deployment's paths.

One site config serves both uses: `make run` embeds it in an nginx of its own (pid, logs and
temp files under the run directory), and a production host includes it in the system's nginx
(`manage.py nginx_config --site`). Its internal locations point at the stores the service
names in `X-Accel-Redirect` (`provisioning.delivery`).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

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


def _real_ip_lines(indent: str) -> str:
    """Edges and balancers in front of this instance (ZOSBOOT_REAL_IP_FROM) name the node in
    X-Forwarded-For: believe them, and only them."""
    sources = [_checked("ZOSBOOT_REAL_IP_FROM", value) for value in settings.ZOSBOOT_REAL_IP_FROM]
    if not sources:
        return ""
    lines = [f"set_real_ip_from {source};" for source in sources]
    lines += ["real_ip_header X-Forwarded-For;", "real_ip_recursive on;"]
    return f"\n{indent}".join(lines)


def site_config(listen: str, upstream: str) -> str:
    """The `upstream` + `server` blocks, self-contained (the file snippet is inlined)."""
    snippet = (TEMPLATES / "zosboot-file.conf").read_text().strip()
    indented = "\n".join(f"        {line}" if line else "" for line in snippet.splitlines())
    text = (TEMPLATES / "zosboot-site.conf").read_text()
    text = text.replace("        include @SNIPPET@;", indented)
    values = {
        "LISTEN": _checked("listen address", listen),
        "REAL_IP": _real_ip_lines("    ") or "# no edge or balancer in front",
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


def edge_config(origin: str, listen: str, edge_dir: str, cache_bytes: int, stale_hours: int) -> str:
    """The site config of an edge in front of `origin` (setup/nginx/edge-site.conf, as
    setup/edge.sh renders it), for an nginx ops run themselves."""
    parts = urlsplit(origin.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ValueError(f"the origin {origin!r} is not a base URL (http[s]://host[:port])")
    resolver = ""
    if not _is_address(parts.hostname or ""):
        # A name is resolved when nodes ask, so the edge starts (and serves) without DNS.
        nameservers = _nameservers()
        if not nameservers:
            raise ValueError("the origin is a host name and /etc/resolv.conf names no nameserver")
        resolver = f"resolver {' '.join(nameservers)} valid=60s;"
    values = {
        "ORIGIN": _checked("origin", f"{parts.scheme}://{parts.netloc}"),
        "ORIGIN_HOST": _checked("origin", parts.netloc),
        "BIND": _checked("listen address", listen),
        "EDGE_DIR": _checked("edge directory", str(Path(edge_dir).resolve())),
        "CACHE_BYTES": str(int(cache_bytes)),
        "STALE_HOURS": str(int(stale_hours)),
        "RESOLVER": resolver,
    }
    return _fill("edge-site.conf", values)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _nameservers() -> list[str]:
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            found.append(f"[{words[1]}]" if ":" in words[1] else words[1])
    return found
