"""How the simulated phone's requests reach the app: in process (tests) or over HTTP (a running instance)."""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

import requests

from voice.simulator.timing import TWILIO_TIMEOUT_SECONDS


class FlaskTransport:
    """Sends requests to a Flask app in this process (tests), noting exceptions the app logs meanwhile."""

    def __init__(self, app):
        self.app = app

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        status, body, content_type, _ = self.post_watching(url, data, headers)
        return status, body, content_type

    def post_watching(self, url: str, data: dict, headers: dict) -> tuple[int, str, str, list[str]]:
        """As `post`, plus each exception logged (ERROR or above, with exc_info) while the app handled it."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        catcher = _ExceptionCatcher(threading.get_ident())
        root = logging.getLogger()
        root.addHandler(catcher)
        try:
            with self.app.test_client() as client:
                response = client.post(path, data=data, headers=headers)
                body = response.get_data(as_text=True)
                response.close()  # as a WSGI server does once the answer is sent
        finally:
            root.removeHandler(catcher)
        return response.status_code, body, response.content_type or "", catcher.seen


class _ExceptionCatcher(logging.Handler):
    """Collects logged exceptions from one thread (the test client runs the app in the caller's thread)."""

    def __init__(self, thread_id: int):
        super().__init__(logging.ERROR)
        self.thread_id = thread_id
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.thread == self.thread_id:
            self.seen.append(f"exception: {record.name}: {record.getMessage()}")


class HttpTransport:
    """Sends requests over HTTP to a running instance; `target` replaces the public base URL when set."""

    def __init__(self, public_base_url: str, target: str | None = None, timeout: float = TWILIO_TIMEOUT_SECONDS):
        self.public = public_base_url.rstrip("/")
        self.target = (target or public_base_url).rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        if url.startswith(self.public):
            url = self.target + url[len(self.public):]
        try:
            response = self.session.post(url, data=data, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            return 599, f"{type(error).__name__}: {error}", ""
        return response.status_code, response.text, response.headers.get("Content-Type", "")
