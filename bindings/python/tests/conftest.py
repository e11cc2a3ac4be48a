"""Shared fixtures: the generated module on sys.path, and a loopback origin for the tests."""

import http.server
import os
import pathlib
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bindings" / "python" / "generated"))
FIXTURES = ROOT / "tests" / "fixtures"


class Origin:
    """Serves tests/fixtures on 127.0.0.1. Segments can be slowed down (`delay`), and under
    /old/ every segment answers 403 (an expired signed URL) while playlists still work."""

    def __init__(self):
        self.delay = 0.0
        self.requests = []
        # (time.monotonic() when the request arrived, path)
        self.timed = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                origin.requests.append(path)
                origin.timed.append((time.monotonic(), path))
                expired = path.startswith("/old/")
                rel = path.removeprefix("/old/").removeprefix("/new/").lstrip("/")
                if rel.startswith("error-page"):
                    # A CDN's error page, served with 200 (whatever the name says).
                    body = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "video/mp4")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                file = FIXTURES / rel
                if ".." in rel or not file.is_file():
                    self.send_error(404)
                    return
                if rel.endswith(".ts"):
                    if expired:
                        self.send_error(403)
                        return
                    time.sleep(origin.delay)
                body = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client paused or cancelled mid-transfer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


@pytest.fixture
def fixtures():
    return FIXTURES


class FakeVod:
    """The fake ApsaraVideo VOD API and its type-A-signing CDN origin from the Rust test crate
    (`vodvault-test-origin --vod`): the sample videos, signatures checked, URLs that expire."""

    def __init__(self, hls_uri_token=None, missing=()):
        import subprocess

        binary = ROOT / "target" / "debug" / "vodvault-test-origin"
        if not binary.exists():
            subprocess.run(["cargo", "build", "-q", "-p", "vodvault-tests", "--bin", "vodvault-test-origin"], cwd=ROOT, check=True)
        args = [str(binary), str(FIXTURES), "--vod"] + (["--hls-uri-token", hls_uri_token] if hls_uri_token else [])
        for path in missing:
            args += ["--missing", path]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.origin = self.proc.stdout.readline().strip()
        self.endpoint = self.proc.stdout.readline().strip()
        assert self.origin.startswith("http://127.0.0.1:") and self.endpoint.startswith("http://127.0.0.1:")

    def sts(self, ttl=3600):
        """STS credentials, as the app's own server would hand them out."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.endpoint}sts?ttl={ttl}", timeout=10) as r:
            return json.load(r)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def vod():
    v = FakeVod()
    yield v
    v.close()
