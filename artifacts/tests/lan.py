"""A farm's LAN made of network namespaces, for proving the PXE kit with real DHCP, real TFTP
and real firmware.

::

    namespace "lan":    bridge br0 ── rport ── eth0  namespace "router" 192.168.77.1
                                    │                dnsmasq: leases, no boot file
                                    │                relay on 198.51.100.10:80 (its loopback)
                                    ├─ kport ── eth0  namespace "kit"    192.168.77.2
                                    │                the kit's run.sh
                                    ├─ pport ── eth0  namespace "probe"  192.168.77.50
                                    │                the DHCP/TFTP probe (pxe_probe.py)
                                    └─ tapN          QEMU guests (QEMU runs in "lan")

The boot service is reached from the LAN only as http://198.51.100.10, an address that exists
on the router's loopback and nowhere else: a socat there hands each connection to a unix socket,
where a second socat (in the test's own namespace) connects it to the live test server on
127.0.0.1. Nothing in these namespaces has a route anywhere else, so no packet leaves them.

Everything is made by :meth:`FarmLan.start` and removed by :meth:`FarmLan.close` (processes by
their own ids, then the namespaces, whose interfaces go with them), whatever happened between.
Needs root, ``ip`` (iproute2), ``dnsmasq`` and ``socat``. No Django.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SUBNET_PREFIX = 24
ROUTER = "192.168.77.1"
KIT = "192.168.77.2"
PROBE = "192.168.77.50"
LEASES = ("192.168.77.100", "192.168.77.199")
#: The boot service as the LAN sees it (TEST-NET-2, RFC 5737): only on the router's loopback.
SERVICE = "198.51.100.10"
SERVICE_URL = f"http://{SERVICE}"

ROLES = ("router", "kit", "probe")


class LanUnavailable(Exception):
    """The kernel (or the user) refuses network namespaces here: the tests cannot run."""


def missing_tools() -> list[str]:
    """What the host lacks for the LAN, as install hints."""
    hints = {"ip": "iproute2", "dnsmasq": "dnsmasq-base", "socat": "socat"}
    return [
        f"{tool} not found (apt-get install {package})"
        for tool, package in hints.items()
        if shutil.which(tool) is None
    ]


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


@dataclass
class Process:
    """A process the LAN started, with its output in a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.popen.returncode}) before {text!r}:\n"
                    + self.output()
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no {text!r} in {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)


@dataclass
class FarmLan:
    """The LAN; use as a context manager, or call start() and close()."""

    http_port: int
    workdir: Path
    prefix: str = field(default_factory=lambda: f"zosk{os.getpid() % 100000}")
    processes: list[Process] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    taps: int = 0

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @property
    def lan(self) -> str:
        return self.ns("lan")

    # --- making it ------------------------------------------------------------------------

    def __enter__(self) -> FarmLan:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._add_namespace("lan")
        _run("ip", "-n", self.lan, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.lan, "link", "set", "br0", "up")
        for role in ROLES:
            self._add_namespace(role)
            port = f"{role[0]}port"
            _run("ip", "-n", self.lan, "link", "add", port, "type", "veth",
                 "peer", "name", "eth0", "netns", self.ns(role))  # fmt: skip
            _run("ip", "-n", self.lan, "link", "set", port, "master", "br0", "up")
        addresses = {"router": ROUTER, "kit": KIT, "probe": PROBE}
        for role, address in addresses.items():
            _run("ip", "-n", self.ns(role), "addr", "add", f"{address}/{SUBNET_PREFIX}",
                 "dev", "eth0")  # fmt: skip
            _run("ip", "-n", self.ns(role), "link", "set", "eth0", "up")
        # The kit's machine has its default route through the router, as on a real LAN: run.sh
        # finds its interface by it.
        _run("ip", "-n", self.ns("kit"), "route", "add", "default", "via", ROUTER)
        _run("ip", "-n", self.ns("router"), "addr", "add", f"{SERVICE}/32", "dev", "lo")
        self._start_router()
        self._start_relay()

    def _add_namespace(self, role: str) -> None:
        name = self.ns(role)
        try:
            _run("ip", "netns", "add", name)
        except RuntimeError as exc:
            # The first namespace tells whether this kernel (and user) may make them at all;
            # a name left over by a killed run is not a refusal.
            if not self.namespaces and "File exists" not in str(exc):
                raise LanUnavailable(f"network namespaces refused here: {exc}") from None
            raise
        self.namespaces.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")

    def _start_router(self) -> None:
        router = self.start_process(
            "router dnsmasq", "router",
            ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
             "--interface=eth0", "--bind-interfaces", "--leasefile-ro", "--pid-file=",
             f"--dhcp-range={LEASES[0]},{LEASES[1]},255.255.255.0,1h",
             f"--dhcp-option=option:router,{ROUTER}", "--log-dhcp"],
        )  # fmt: skip
        router.wait_for("DHCP, sockets bound exclusively to interface eth0")

    def _start_relay(self) -> None:
        socket_path = self.workdir / "service.sock"
        host = self.start_process(
            "relay to the test server", None,
            ["socat", f"UNIX-LISTEN:{socket_path},fork,mode=600",
             f"TCP:127.0.0.1:{self.http_port}"],
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if host.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the relay did not start:\n{host.output()}")
            time.sleep(0.05)
        self.start_process(
            "relay on the router", "router",
            ["socat", f"TCP-LISTEN:80,bind={SERVICE},reuseaddr,fork",
             f"UNIX-CONNECT:{socket_path}"],
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while ":80 " not in _run("ip", "netns", "exec", self.ns("router"), "ss", "-Hltn"):
            if time.monotonic() > deadline:
                raise RuntimeError("the relay on the router did not start listening")
            time.sleep(0.05)

    def start_process(self, name: str, role: str | None, argv: list[str]) -> Process:
        """Start a program in a namespace of the LAN (``None``: the test's own), its output
        to a file; :meth:`close` ends it."""
        log = self.workdir / f"{name.replace(' ', '-')}.log"
        prefix = [] if role is None else ["ip", "netns", "exec", self.ns(role)]
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [*prefix, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True,
            )  # fmt: skip
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def add_tap(self) -> str:
        """A tap on the LAN's bridge for a QEMU guest (QEMU must run in :attr:`lan`)."""
        name = f"tap{self.taps}"
        self.taps += 1
        _run("ip", "-n", self.lan, "tuntap", "add", name, "mode", "tap")
        _run("ip", "-n", self.lan, "link", "set", name, "master", "br0", "up")
        return name

    def run(self, role: str, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a program to its end in a namespace of the LAN."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns(role), *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    # --- removing it ----------------------------------------------------------------------

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
        self.namespaces.clear()


def world_readable_dir(prefix: str) -> Path:
    """A fresh directory every user may read (dnsmasq serves the kit's files as nobody;
    pytest's own temporary directories are private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path
