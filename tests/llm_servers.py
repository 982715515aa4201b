"""Real local HTTP servers for the LLM tests: llama-cpp-python's own OpenAI-compatible server
running the embedded SmolLM2, and a fault-injecting server (500, 429, garbage, too slow)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(model_path, port: int, log_path, timeout_s: float = 90.0) -> subprocess.Popen:
    # The log goes to a file: llama.cpp writes a lot, and a full pipe would stall the server.
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
                             "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "8192"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {open(log_path, 'rb').read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"llama_cpp.server did not start in time: {open(log_path, 'rb').read().decode(errors='replace')[-2000:]}")


def _completion(content: str, usage: bool = True) -> dict:
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}
    if usage:
        body["usage"] = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    return body


class FaultServer:
    """The first path segment picks the behaviour: /500/v1, /429/v1, /garbage/v1, /slow/v1,
    /echo-key/v1 (a 401 whose body repeats the Authorization header), /no-usage/v1, /ok/v1."""

    ANSWER = '{"edits": [{"changes": {"root/unroll": 16}, "rationale": "unroll more"}]}'

    def __init__(self, slow_s: float = 3.0):
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, content_type="application/json", headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                mode = self.path.strip("/").split("/")[0]
                server.hits[mode] = server.hits.get(mode, 0) + 1
                if mode == "500":
                    self._send(500, {"error": {"message": "internal error", "type": "server_error"}})
                elif mode == "429":
                    self._send(429, {"error": {"message": "rate limited"}}, headers=[("Retry-After", "0")])
                elif mode == "garbage":
                    self._send(200, b"<html>\x00\xff not a completion {{{", content_type="application/json")
                elif mode == "slow":
                    time.sleep(slow_s)
                    self._send(200, _completion(FaultServer.ANSWER))
                elif mode == "echo-key":
                    self._send(401, {"error": {"message": f"bad key {self.headers.get('Authorization')}"}})
                elif mode == "no-usage":
                    self._send(200, _completion(FaultServer.ANSWER, usage=False))
                else:
                    self._send(200, _completion(FaultServer.ANSWER))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A client that timed out has hung up before the slow answer: expected, not worth a traceback.
        self.httpd.handle_error = lambda request, address: None
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
