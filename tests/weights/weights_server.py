"""A loopback HTTP server for weights tests: serves bytes by path, honours Range, can misbehave on purpose."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FixtureServer"]


class FixtureServer:
    """``files[path] = bytes``, served with a strong ETag (the body's hash) that ``If-Range`` is checked
    against; ``truncate_once`` paths send half their body once, then drop the connection; ``hold`` paths
    stop half-way until ``release`` is set; ``drip`` paths send one byte every ``drip_interval`` s for at
    most ``drip_for`` s, then drop the connection; ``lie[path] = n`` announces n bytes, sends 1,000 and
    hangs up; ``unavailable[path] = n`` answers the next n requests with HTTP 503. Every request is
    logged as ``(path, Range)``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate_once: set[str] = set()
        self.hold: set[str] = set()
        self.drip: set[str] = set()
        self.drip_interval = 0.1
        self.drip_for = 3.0
        self.lie: dict[str, int] = {}
        self.ignore_if_range = False  # some servers do: then the ETag of the 206 tells the change
        self.unavailable: dict[str, int] = {}  # path: how many more requests get 503
        self.release = threading.Event()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path, wanted = self.path, self.headers.get("Range")
                server.requests.append((path, wanted))
                if path not in server.files:
                    self.send_error(404, "Not Found")
                    return
                body = server.files[path]
                if server.unavailable.get(path, 0) > 0:
                    server.unavailable[path] -= 1
                    self.send_error(503, "Service Unavailable")
                    return
                if path in server.lie:
                    self.send_response(200)
                    self.send_header("Content-Length", str(server.lie[path]))
                    self.end_headers()
                    self.wfile.write(os.urandom(1000))
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                start = int(wanted.split("=")[1].split("-")[0]) if wanted else 0
                if not server.ignore_if_range and self.headers.get("If-Range", etag) != etag:
                    start = 0  # changed since the client's partial copy: the whole file (RFC 9110 13.1.5)
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if path in server.drip:
                    deadline = time.monotonic() + server.drip_for
                    for offset in range(start, len(body)):
                        if time.monotonic() > deadline:
                            break
                        self.wfile.write(body[offset : offset + 1])
                        self.wfile.flush()
                        time.sleep(server.drip_interval)
                    self.close_connection = True
                    return
                half = start + (len(body) - start) // 2
                if path in server.truncate_once and not start:
                    server.truncate_once.discard(path)
                    self.wfile.write(body[start:half])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if path in server.hold:
                    self.wfile.write(body[start:half])
                    self.wfile.flush()
                    server.release.wait(timeout=120)
                    self.wfile.write(body[half:])
                    return
                self.wfile.write(body[start:])

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        report = self._httpd.handle_error

        def handle_error(request: Any, address: Any) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is expected
                report(request, address)

        self._httpd.handle_error = handle_error  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def gets(self, path: str) -> list[str | None]:
        """The Range header of every request for ``path`` (None for a whole-file request)."""
        return [wanted for got, wanted in self.requests if got == path]

    def __enter__(self) -> FixtureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
