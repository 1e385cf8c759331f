"""A real local HTTP server (stdlib ``http.server`` in a thread, 127.0.0.1, a free port) serving a
folder of raw files as ``<base>/<raw path>``, as a mirror of the upstreams would, with an ETag per
file (``If-None-Match`` answered 304), and faults per raw file for the failure tests: an HTTP
status, a body in place of the file (an HTML page, a truncated copy), or a delay (a timeout).
Also :func:`cut_raw`: a copy of the raw folder without the rows of months after a given month."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

MONTH_FIELD = re.compile(rb"(?:^|,)(\d{4}-\d{2})")


def cut_raw(src: Path, dst: Path, last_month: str) -> Path:
    """Copy ``src`` into ``dst``, dropping every CSV row whose first YYYY-MM field is after
    ``last_month`` (the raw files as they were published then); other files copied as they are."""
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix != ".csv":
            shutil.copyfile(path, out)
            continue
        lines = path.read_bytes().splitlines(keepends=True)
        kept = [
            line for line in lines[1:] if not ((m := MONTH_FIELD.search(line)) and m.group(1).decode() > last_month)
        ]
        out.write_bytes(b"".join(lines[:1] + kept))
    return dst


@dataclass
class Fault:
    """What the server answers for one raw file instead of the file."""

    status: int = 200
    body: bytes | None = None
    content_type: str = "text/csv; charset=utf-8"
    delay: float = 0.0


@dataclass
class Mirror:
    root: Path
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base: str = ""


def serve(mirror: Mirror):
    """Start serving ``mirror`` (sets ``mirror.base``); returns the server (call ``shutdown()``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            rel = unquote(self.path.lstrip("/").split("?")[0])
            mirror.requests.append(rel)
            fault = mirror.faults.get(rel)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                body = fault.body if fault.body is not None else f"status {fault.status}".encode()
                self._answer(fault.status, body, fault.content_type)
                return
            path = mirror.root / rel
            if not path.is_file():
                self._answer(404, b"not found", "text/plain")
                return
            content = path.read_bytes()
            etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self._answer(200, content, "text/csv; charset=utf-8", etag)

        def _answer(self, status: int, body: bytes, content_type: str, etag: str | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror.base = f"http://127.0.0.1:{server.server_address[1]}"
    return server
