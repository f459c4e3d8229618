"""gunicorn's threaded worker, guarded against slow clients (Django delivery, no front server).

gunicorn's `gthread` worker hands a connection to a thread as soon as a byte arrives, and the
thread then waits, without any time limit, for the rest of the headers and the body: a dozen
clients sending one byte a second hold every thread, and scripts stop answering. nginx guards
against that in front of gunicorn (`make run`); without it this worker does:

- headers are collected in the worker's event loop, without a thread; a new connection whose
  headers are not complete `ZOSBOOT_CLIENT_TIMEOUT` seconds after it opened is closed (a
  kept-alive one after gunicorn's `--keep-alive` seconds, as before);
- a thread reads the body only within `ZOSBOOT_CLIENT_TIMEOUT` seconds plus one second per
  `MIN_BODY_RATE` bytes: an upload may be large, not arbitrarily slow. A body too slow ends
  the request with 400 and a WARNING on the security log (provisioning.http).

Serve with `gunicorn zosboot.wsgi --worker-class provisioning.slow_clients.GuardedThreadWorker`.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import time
from functools import partial

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from gunicorn.workers.gthread import TConn, ThreadWorker

logger = logging.getLogger("zosboot.slow_clients")

# A body must arrive at least this fast on average (after the grace of the timeout).
MIN_BODY_RATE = 64 * 1024
# Headers longer than this go to a thread as they are; gunicorn refuses them (400).
MAX_HEADER_BYTES = 64 * 1024


class ClientTooSlow(SuspiciousOperation):
    """The client did not send its request body in time."""


class _BodyDeadline:
    """The socket as a request's body reader sees it: each read waits only as long as the
    deadline allows (`seconds` from the headers, plus one second per MIN_BODY_RATE bytes)."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.seconds = seconds
        self.start()

    def start(self) -> None:
        self.started = time.monotonic()
        self.received = 0
        self.expired = False

    def recv(self, size: int) -> bytes:
        if self.expired:  # said once; the connection ends after this request
            return b""
        deadline = self.started + self.seconds + self.received / MIN_BODY_RATE
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(size)
            finally:
                self.sock.settimeout(None)
        except TimeoutError:
            self.expired = True
            raise ClientTooSlow(
                f"request body too slow: {self.received} bytes in "
                f"{time.monotonic() - self.started:.0f}s"
            ) from None
        self.received += len(data)
        return data


class _Connection(TConn):
    def __init__(self, cfg, sock, client, server, timeout: float) -> None:
        super().__init__(cfg, sock, client, server)
        self.header_bytes = bytearray()
        self.client_timeout = timeout
        self.opened = time.monotonic()
        self.body: _BodyDeadline | None = None

    def init(self) -> None:
        fresh = self.parser is None
        super().init()
        if fresh:
            self.body = _BodyDeadline(self.sock, self.client_timeout)
            self.parser.unreader.sock = self.body
        self.body.start()
        # What the event loop read is the start of the request: the parser reads it first.
        self.parser.unreader.unread(bytes(self.header_bytes))
        self.header_bytes.clear()


class GuardedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker; a thread serves a request only once its headers are in."""

    def run(self) -> None:
        # The application (and so the settings) is loaded by now.
        self.client_timeout = float(settings.ZOSBOOT_CLIENT_TIMEOUT)
        self._reading: set[_Connection] = set()
        super().run()

    def accept(self, server, listener) -> None:
        try:
            sock, client = listener.accept()
        except OSError:  # another worker took it, or it was aborted
            return
        conn = _Connection(self.cfg, sock, client, server, self.client_timeout)
        self.nr_conns += 1
        with self._lock:
            self._reading.add(conn)
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
            )

    def on_client_socket_readable(self, conn: _Connection, client) -> None:
        try:
            data = conn.sock.recv(8192)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        conn.header_bytes += data
        headers_in = b"\r\n\r\n" in conn.header_bytes or b"\n\n" in conn.header_bytes
        if not headers_in and len(conn.header_bytes) < MAX_HEADER_BYTES:
            return  # more to come; the event loop keeps watching, no thread is held
        with self._lock:
            self._reading.discard(conn)
        super().on_client_socket_readable(conn, client)

    def murder_keepalived(self) -> None:
        # Kept-alive connections waiting for their next request are closed by gunicorn after
        # `--keep-alive` seconds, finished headers or not; new ones here.
        super().murder_keepalived()
        cutoff = time.monotonic() - self.client_timeout
        with self._lock:
            late = [c for c in self._reading if c.opened < cutoff]
        for conn in late:
            logger.info(
                "closed a connection from %s: no complete request headers within %ss",
                conn.client[0] if isinstance(conn.client, tuple) else "unix socket",
                self.client_timeout,
            )
            self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        with self._lock:
            self._reading.discard(conn)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            with contextlib.suppress(ValueError):
                self._keep.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def handle_error(self, req, client, addr, exc) -> None:
        if isinstance(exc, ClientTooSlow):
            # Too slow before the application had the request (the body of an earlier one):
            # nothing to answer, the connection just ends.
            logger.warning("closed a connection from %s: %s", addr, exc)
            return
        super().handle_error(req, client, addr, exc)
