"""Pooled PostgreSQL connections the server dropped are replaced before a request can use them."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from voice.db import make_engine


def test_a_connection_the_server_killed_is_replaced_at_checkout(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (TEST_DATABASE_URL)")
    engine = make_engine(database_url)
    killer = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with killer.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            other.commit()
            # pg_terminate_backend only signals the backend: wait until it has gone.
            for _ in range(100):
                gone = not other.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": first}).first()
                other.commit()
                if gone:
                    break
                time.sleep(0.05)
        with engine.connect() as conn:
            again = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert again != first
    finally:
        engine.dispose()
        killer.dispose()
