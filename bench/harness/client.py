"""The kiosk over HTTP, as a desk browser would drive it: one client per kiosk or person."""

from __future__ import annotations

import http.client
import re
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from .base import BenchError

NONCE_RE = re.compile(r'id="nonce" name="nonce" type="hidden" value="([^"]*)"')
START_TOKEN_RE = re.compile(r'id="start_token" name="start_token" type="hidden" value="([^"]*)"')
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    http.client.ResponseNotReady,
    ConnectionResetError,
    BrokenPipeError,
)


class KioskClient:
    """One kiosk: its own keep-alive connection and cookie jar; no redirects followed."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None
        self.last_used = 0.0
        self.requests = 0
        self.reconnects = 0

    def close_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _connection(self) -> http.client.HTTPConnection:
        # gunicorn closes idle keep-alive connections after 2 s; don't race it.
        if self.connection is not None and time.monotonic() - self.last_used > 1.5:
            self.close_connection()
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=self.timeout
            )
            self.reconnects += 1
        return self.connection

    def _store_cookies(self, headers: list[str]) -> None:
        for header in headers:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                expired = morsel["max-age"] == "0" or "1970" in morsel["expires"]
                if expired or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """Send one request; return (status, Location, body). Retries once on a stale socket."""
        body = urlencode(form) if form is not None else None
        headers = {"Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except STALE_CONNECTION:
                self.close_connection()
                if attempt:
                    raise
                continue
            except BaseException:
                self.close_connection()
                raise
            self.last_used = time.monotonic()
            self.requests += 1
            self._store_cookies(response.headers.get_all("Set-Cookie") or [])
            if response.will_close:
                self.close_connection()
            location = response.getheader("Location") or ""
            return response.status, location, data.decode("utf-8", "replace")
        raise AssertionError("unreachable")

    def enroll(self, link: str) -> None:
        path = urlsplit(link).path
        status, _, page = self.request("GET", path)
        match = CSRF_RE.search(page)
        if status != 200 or match is None:
            raise BenchError(f"enrollment page {status} without a CSRF token")
        status, _, _ = self.request("POST", path, {"csrf_token": match.group(1)})
        if status != 302 or "kiosk_device" not in self.cookies:
            raise BenchError(f"enrollment answered {status} without a kiosk_device cookie")

    def idle_fields(self) -> dict[str, str]:
        """GET /desk/ and read the start control; close a leftover open encounter first."""
        for _ in range(3):
            status, _, page = self.request("GET", "/desk/")
            nonce, token = NONCE_RE.search(page), START_TOKEN_RE.search(page)
            if status == 200 and nonce and token:
                return {"nonce": nonce.group(1), "start_token": token.group(1)}
            if status == 200:
                self.close_desk()  # an encounter is still open at this desk
                continue
            raise BenchError(f"GET /desk/ answered {status}")
        raise BenchError("the desk never came back to the idle screen")

    def start(self, fields: dict[str, str]) -> None:
        status, location, _ = self.request(
            "POST", "/desk/start", {**fields, "channel": "in_person"}
        )
        if status != 302 or not location.endswith("/desk/"):
            raise BenchError(f"POST /desk/start answered {status} -> {location!r}")

    def close_desk(self) -> None:
        status, location, page = self.request("GET", "/desk/close")
        match = CSRF_RE.search(page)
        if status == 302 and location.endswith("/desk/"):
            return  # nothing open
        if status != 200 or match is None:
            raise BenchError(f"GET /desk/close answered {status} without a CSRF token")
        status, location, _ = self.request("POST", "/desk/close", {"csrf_token": match.group(1)})
        if status != 302:
            raise BenchError(f"POST /desk/close answered {status} -> {location!r}")
