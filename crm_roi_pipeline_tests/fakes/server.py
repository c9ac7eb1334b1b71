"""What the Salesforce and HubSpot fakes share: serving their request handler on 127.0.0.1 (HTTPS with a
certificate from a trustme CA), stopping, use as a context manager, and failing on their own crashes."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import tempfile
from typing import Any, Self

from pytest_httpserver import HTTPServer
from werkzeug.serving import WSGIRequestHandler


class _NoDelayHandler(WSGIRequestHandler):
    """Sends each response at once (TCP_NODELAY). Werkzeug writes a response's head and body apart, and over
    TLS, with Nagle's algorithm, the body then waits for the client's delayed ACK: ~12 ms a request on the
    loopback, which a real API's network does not add and which made a run against a fake a second longer."""

    disable_nagle_algorithm = True


class _QuickStopServer(HTTPServer):
    """pytest-httpserver polls for shutdown every 0.5 s; poll faster so stop() returns at once."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.RequestHandlerClass = _NoDelayHandler  # before the first request is accepted
        self.server.serve_forever(poll_interval=0.02)


class FakeServer:
    """Base of a fake API. A subclass sets `self._lock`, `self.server_errors` and `_handle(request)`, then
    calls `_serve`."""

    def _serve(self, ca: Any, prefix: str) -> None:
        """Start serving `_handle` for every path: HTTPS with a certificate `ca` (a trustme.CA) issues, whose
        PEM goes to `self.ca_bundle`; plain HTTP without a CA."""
        self._tmpdir = tempfile.mkdtemp(prefix=prefix)
        self.ca_bundle: str | None = None
        context = None
        if ca is not None:
            self.ca_bundle = os.path.join(self._tmpdir, "ca.pem")
            ca.cert_pem.write_to_path(self.ca_bundle)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server = _QuickStopServer(host="127.0.0.1", port=0, ssl_context=context)
        self._server.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self._server.start()
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{self._server.port}"

    def stop(self) -> None:
        with self._lock:
            if self._server.is_running():
                self._server.stop()
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def check(self) -> None:
        """Fail if the fake itself crashed while serving a request."""
        if self.server_errors:
            raise AssertionError(f"{type(self).__name__} crashed while serving:\n" + "\n".join(self.server_errors))
