"""A loopback server speaking the Google OAuth token and Sheets API v4 `values:batchGet` wire
format, for tests. `responses` is a queue of (status, body) or (status, body, headers) answered
before the real data. Misbehaviour on demand: `stall` ("token" or "values") takes the request and
never answers; `trickle` sends the values answer one byte per that many seconds."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN = "ya29.loopback-token"


class SheetsServer:
    def __init__(self, spreadsheet_id: str, tabs: dict[str, list[list[str]]]):
        self.spreadsheet_id, self.tabs = spreadsheet_id, tabs
        self.responses: list[tuple] = []
        self.requests: list[str] = []
        self.request_times: list[float] = []  # time.monotonic() of each values request
        self.token_requests = 0
        self.stall: str | None = None
        self.trickle: float | None = None
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(
                self,
                status: int,
                body: dict,
                headers: dict | None = None,
                trickle: float | None = None,
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if trickle is None:
                    self.wfile.write(data)
                    return
                for byte in data:
                    if server.closing.wait(trickle):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def do_POST(self):  # the service account's JWT exchange
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.token_requests += 1
                if server.stall == "token":
                    server.closing.wait()
                    return
                self._send(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})

            def do_GET(self):
                server.requests.append(self.path)
                server.request_times.append(time.monotonic())
                if server.stall == "values":
                    server.closing.wait()
                    return
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(
                        401,
                        {
                            "error": {
                                "code": 401,
                                "message": "no token",
                                "status": "UNAUTHENTICATED",
                            }
                        },
                    )
                if server.responses:
                    return self._send(*server.responses.pop(0))
                url = urlparse(self.path)
                expected = f"/v4/spreadsheets/{server.spreadsheet_id}/values:batchGet"
                if url.path != expected:
                    return self._send(
                        404,
                        {
                            "error": {
                                "code": 404,
                                "message": "Requested entity was not found.",
                                "status": "NOT_FOUND",
                            }
                        },
                    )
                ranges = parse_qs(url.query)["ranges"]
                for name in ranges:
                    if name not in server.tabs:
                        return self._send(
                            400,
                            {
                                "error": {
                                    "code": 400,
                                    "message": f"Unable to parse range: {name}",
                                    "status": "INVALID_ARGUMENT",
                                }
                            },
                        )
                self._send(
                    200,
                    {
                        "spreadsheetId": server.spreadsheet_id,
                        "valueRanges": [
                            {
                                "range": f"{name}!A1:Z{len(server.tabs[name])}",
                                "majorDimension": "ROWS",
                                **({"values": server.tabs[name]} if server.tabs[name] else {}),
                            }
                            for name in ranges
                        ],
                    },
                    trickle=server.trickle,
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SheetsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def service_account_file(self, path) -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "cdp-test",
                    "private_key_id": "k1",
                    "private_key": pem,
                    "client_email": "cdp@cdp-test.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{self.url}/token",
                }
            )
        )
        return str(path)
