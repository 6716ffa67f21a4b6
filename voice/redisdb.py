"""The Redis connection and every key name the program uses."""

from __future__ import annotations

import redis
from flask import Flask, current_app


class Keys:
    """Redis key names, built in one place."""

    prefix = "ml:"

    @classmethod
    def available(cls, language: str) -> str:
        """Sorted set of switched-on specialists who speak `language`, scored by idle-since."""
        return f"{cls.prefix}available:{language}"

    @classmethod
    def language_queues(cls) -> str:
        """Set of every language with an idle queue (a specialist's language skills put them in its queue)."""
        return f"{cls.prefix}languages"

    @classmethod
    def prefer_until(cls, hold_id: int) -> str:
        """When the preferred specialists stop ringing alone for a held caller (epoch seconds; PREFER_SECONDS)."""
        return f"{cls.prefix}prefer-until:{hold_id}"

    @classmethod
    def lease(cls, specialist_id: int | str) -> str:
        """Who holds a specialist right now ("call:CA..." or "callback:12"); expires on its own."""
        return f"{cls.prefix}lease:{specialist_id}"

    @classmethod
    def lease_prefix(cls) -> str:
        return f"{cls.prefix}lease:"

    @classmethod
    def tried(cls, call_sid: str) -> str:
        """Specialists already offered this call, so a retry moves on to someone else."""
        return f"{cls.prefix}tried:{call_sid}"

    @classmethod
    def offers(cls, hold_id: int) -> str:
        """Hash of the specialists' phones being rung for one held caller: specialist id -> Call SID."""
        return f"{cls.prefix}offers:{hold_id}"

    @classmethod
    def offers_pattern(cls) -> str:
        """Every held caller's offers hash, for SCAN."""
        return f"{cls.prefix}offers:*"

    @classmethod
    def offer_times(cls, hold_id: int) -> str:
        """Hash beside `offers`: specialist id -> when their phone was rung (ISO, naive UTC)."""
        return f"{cls.prefix}offer-times:{hold_id}"

    @classmethod
    def rejoin(cls, specialist_id: int) -> str:
        """The held caller (hold id) a specialist was cut off from; they may rejoin while it lasts (a minute)."""
        return f"{cls.prefix}rejoin:{specialist_id}"

    @classmethod
    def cut_off(cls, hold_id: int) -> str:
        """The specialist a held caller was cut off from (the other side of `rejoin`), rung first for them."""
        return f"{cls.prefix}cut-off:{hold_id}"

    @classmethod
    def rejoin_leg(cls, call_sid: str) -> str:
        """A specialist's own call to the line that took them back to a caller: "hold id:specialist id"."""
        return f"{cls.prefix}rejoin-leg:{call_sid}"

    @classmethod
    def caller_leg(cls, request_id: int) -> str:
        """The Call SID of the caller's leg of a callback's attempt in progress (to stop it if nobody is there)."""
        return f"{cls.prefix}caller-leg:{request_id}"

    @classmethod
    def twilio_down_since(cls) -> str:
        """When Twilio's REST API stopped answering (epoch seconds); absent while it answers."""
        return f"{cls.prefix}twilio:down_since"

    @classmethod
    def twilio_probe(cls) -> str:
        """Held (with an expiry) by the one request allowed to reach Twilio per interval while it is down."""
        return f"{cls.prefix}twilio:probe"

    @classmethod
    def webhook_response(cls, fingerprint: str) -> str:
        """The answer we gave to one Twilio request, replayed if Twilio repeats it."""
        return f"{cls.prefix}webhook:{fingerprint}"


def connect(url: str) -> redis.Redis:
    # Short timeouts: a caller is waiting, and a dead Redis must fail fast into the safe path.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def init_app(app: Flask) -> None:
    app.extensions["redis"] = connect(app.config["REDIS_URL"])
