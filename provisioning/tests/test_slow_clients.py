"""Slow clients cannot starve gunicorn without a front server (Django delivery,
provisioning.slow_clients): a dozen clients sending one byte a second, some of their headers,
some of a request body, while scripts keep answering."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from provisioning.tests.stack import running_stack

pytestmark = pytest.mark.stack

TIMEOUT = 3  # ZOSBOOT_CLIENT_TIMEOUT of the stack


class Dribbler(threading.Thread):
    """A client that sends `prefix` at once, then one byte a second of `rest`, and notes when
    the server closed the connection (at most `limit` seconds)."""

    def __init__(self, port: int, prefix: bytes, rest: bytes, limit: float = 20) -> None:
        super().__init__(daemon=True)
        self.port, self.prefix, self.rest, self.limit = port, prefix, rest, limit
        self.closed_after: float | None = None
        self.answer = b""

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(self.prefix)
            sock.settimeout(1)
            for byte in self.rest:
                if time.monotonic() - started > self.limit:
                    return
                try:
                    sock.sendall(bytes([byte]))
                    chunk = sock.recv(4096)  # waits up to a second: the pace
                except TimeoutError:
                    continue
                except OSError:
                    chunk = b""
                self.answer += chunk
                if not chunk:
                    self.closed_after = time.monotonic() - started
                    return


def test_a_dozen_one_byte_a_second_clients_cannot_starve_scripts(tmp_path, ipxe_dir):
    settings = {
        "ZOSBOOT_FILE_DELIVERY": "django",
        "ZOSBOOT_THREADS": "4",  # 2 workers x 4 threads: 8, fewer than the slow clients
        "ZOSBOOT_CLIENT_TIMEOUT": str(TIMEOUT),
    }
    with running_stack(tmp_path, ipxe_dir, **settings) as stack:
        kernel = tmp_path / "zero-os-slow.efi"
        kernel.write_bytes(b"MZ slow clients\n")
        kernel.chmod(0o644)
        stack.manage("import_kernel", str(kernel), "--network", "prod")
        token = stack.manage("create_api_token", "ci", "--scope", "publish").split()[-1]
        headers = b"GET /ipxe/prod/1234 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40
        upload = (
            b"POST /api/kernel HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Cookie: token=" + token.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 4000\r\n\r\n"
        )
        slow_headers = [Dribbler(stack.port, b"", headers) for _ in range(6)]
        slow_bodies = [Dribbler(stack.port, upload, b"x" * 60) for _ in range(6)]
        for client in slow_headers + slow_bodies:
            client.start()
        time.sleep(1)
        started = time.monotonic()
        waits = []
        while time.monotonic() - started < TIMEOUT + 4:  # through the slow clients' lifetime
            asked = time.monotonic()
            status, _, body = stack.get("/ipxe/prod/1234", timeout=10)
            waits.append(time.monotonic() - asked)
            assert status == 200 and b"zero-os-slow.efi" in body
            time.sleep(0.25)
        for client in slow_headers + slow_bodies:
            client.join(timeout=25)
        # A slow body holds a thread until the timeout at most (a worker whose threads all read
        # one makes a script wait that long); slow headers hold none.
        assert max(waits) < TIMEOUT + 1, waits
        assert sorted(waits)[len(waits) // 2] < 0.5, waits
        # Each slow client was cut off soon after the timeout, headers or body.
        cut = [client.closed_after for client in slow_headers + slow_bodies]
        assert all(after is not None and after < TIMEOUT + 3 for after in cut), cut
        for client in slow_bodies:  # the application answered, and said why
            assert client.answer.startswith(b"HTTP/1.1 400"), client.answer[:200]
        assert "request body too slow" in stack.log()
        assert "Traceback" not in stack.log()
