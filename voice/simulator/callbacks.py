"""Twilio's asynchronous callbacks (conference events, message statuses): posted in order, off the caller's thread.

Twilio sends these from its side whenever an event happens, not inside the request that caused it (a REST
update that mutes a participant answers at once; the participant-mute event follows). One thread per phone
posts them in the order they happened, so an app handler that calls the REST API back never deadlocks a leg.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Send = Callable[[str, dict], tuple[int, str]]
Done = Callable[[int, str], None]


class CallbackDispatcher:
    """Posts (url, params) with `send`, one after another; `settle` waits until all posted so far are answered."""

    def __init__(self, send: Send):
        self._send = send
        self._queue: queue.Queue[tuple[str, dict, Done | None]] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def post(self, url: str, params: dict, done: Done | None = None) -> None:
        """Queue one signed POST; `done(status, body)` runs once it is answered."""
        with self._idle:
            self._pending += 1
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="twilio-callbacks", daemon=True)
                self._thread.start()
        self._queue.put((url, params, done))

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every callback queued so far has been answered; False if that took longer than `timeout`."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            url, params, done = self._queue.get()
            try:
                status, body = self._send(url, params)
            except Exception as error:  # a broken transport must not kill the thread that posts everything
                status, body = 599, f"{type(error).__name__}: {error}"
            try:
                if done is not None:
                    done(status, body)
            except Exception:
                log.exception("simulator: recording a callback's answer failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
