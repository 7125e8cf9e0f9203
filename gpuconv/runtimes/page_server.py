"""A browser runtime's own HTTP server on 127.0.0.1: serves its page and carries large uploads.

Playwright carries a ``page.evaluate`` argument or answer as JSON through its driver and the
DevTools protocol, about 10 MB/s here: a 3x3x512x512 filter (9.4 MB, 12.6 MB as base64) took
1.1-1.8 s to reach the page, against 11 ms to decode it and 12 ms to upload it there.  Over
this server the page ``fetch``es the same bytes from 127.0.0.1 as a socket copy.  Small arrays
stay inline in the message (one round trip, no request).  Read-backs do not come this way: a
request's body is copied into Playwright's events (a 4.8 MB POST took 730 ms), so the page hands
them back as a download instead (``browser_transfer.js``).

The page is served from the same origin (``http://127.0.0.1:<port>/``), so its requests need
no CORS, and it is a secure context (WebGPU needs one).
"""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional

#: Arrays of at least this many bytes cross outside the message (uploads through the server,
#: read-backs as a download), smaller ones inline as base64.
BLOB_BYTES = 256 * 1024

PAGE_PATH = "/gpuconv.html"
#: The page's headers that make it cross-origin isolated, where Chromium's performance.now() is
#: precise to 5 us instead of 100 us (in-page timings of layers that take 0.1 ms need it).
ISOLATED = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
BLOB_PATH = "/blob/"


class PageServer:
    """Serves one page and a store of byte strings by key, on 127.0.0.1 at a free port.

    Python ``put``s an upload's bytes and sends the key; the page ``GET``s ``/blob/<key>`` once.
    """

    def __init__(self) -> None:
        self.page = ""
        self._blobs: Dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._keys = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == PAGE_PATH:  # cross-origin isolated: performance.now() to 5 us, not 100
                    self._answer(200, server.page.encode("utf-8"), "text/html; charset=utf-8", ISOLATED)
                    return
                body = server._pop(self.path[len(BLOB_PATH):]) if self.path.startswith(BLOB_PATH) else None
                if body is None:
                    self._answer(404, b"", "text/plain")
                else:
                    self._answer(200, body, "application/octet-stream")

            def _answer(self, status: int, body: bytes, content_type: str,
                        headers: Optional[Dict[str, str]] = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet: no line per request
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="gpuconv-page-server", daemon=True)
        self._thread.start()

    @property
    def page_url(self) -> str:
        return self.origin + PAGE_PATH

    def put(self, data: bytes) -> str:
        """Keep ``data`` for the page to fetch once; its key."""
        key = f"u{next(self._keys)}"
        with self._lock:
            self._blobs[key] = data
        return key

    def _pop(self, key: str) -> Optional[bytes]:
        with self._lock:
            return self._blobs.pop(key, None)

    def clear(self) -> None:
        """Forget every byte string not fetched or taken (a call that failed half way)."""
        with self._lock:
            self._blobs.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.clear()
