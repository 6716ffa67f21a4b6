"""Who takes a call: the atomic claim of the longest-idle specialist, leases, and release."""

from __future__ import annotations

import time

import redis
from blinker import Namespace

from voice.redisdb import LANGUAGES, Keys

_signals = Namespace()
# Sent (with specialist_id) whenever a specialist may have become free: switched on, or a call ended.
specialist_freed = _signals.signal("specialist-freed")

# Walk the language's idle queue oldest first and take up to ARGV[5] specialists nobody holds and who
# have not been tried for this caller. One script, so two callers can never claim the same person.
_CLAIM = """
local taken = {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(members) do
  if #taken >= tonumber(ARGV[5]) then break end
  if KEYS[2] == '' or redis.call('SISMEMBER', KEYS[2], id) == 0 then
    if ARGV[4] == '' or ARGV[4] == id then
      if redis.call('SET', ARGV[1] .. id, ARGV[2], 'NX', 'PX', ARGV[3]) then
        table.insert(taken, id)
      end
    end
  end
end
return taken
"""

# Only the holder may release or extend a lease: a late request for an old call must not free
# a specialist who has since been given someone else.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def call_holder(call_sid: str) -> str:
    return f"call:{call_sid}"


def callback_holder(request_id: int) -> str:
    return f"callback:{request_id}"


def offer_holder(hold_id: int) -> str:
    return f"offer:{hold_id}"


def claim_specialists(
    r: redis.Redis,
    language: str,
    holder: str,
    lease_seconds: int,
    tried_key: str | None = None,
    only: int | None = None,
    limit: int = 1,
) -> list[int]:
    """Atomically take up to `limit` free specialists for `language`, longest idle first."""
    result = r.eval(
        _CLAIM,
        2,
        Keys.available(language),
        tried_key or "",
        Keys.lease_prefix(),
        holder,
        int(lease_seconds * 1000),
        str(only) if only else "",
        limit,
    )
    return [int(x) for x in result or []]


def claim_next_specialist(
    r: redis.Redis,
    language: str,
    holder: str,
    lease_seconds: int,
    tried_key: str | None = None,
    only: int | None = None,
) -> int | None:
    """Atomically take the longest-idle free specialist for `language`; None if nobody is free."""
    taken = claim_specialists(r, language, holder, lease_seconds, tried_key, only, limit=1)
    return taken[0] if taken else None


def extend_lease(r: redis.Redis, specialist_id: int, holder: str, seconds: int) -> bool:
    """Keep holding a specialist (they accepted); False if the lease is gone or someone else's."""
    return bool(r.eval(_EXTEND, 1, Keys.lease(specialist_id), holder, int(seconds * 1000)))


def release_specialist(r: redis.Redis, specialist_id: int, holder: str, keep_place: bool = False) -> bool:
    """Free a specialist held by `holder` and put them at the back of the idle queue.

    `keep_place` leaves their idle-since time alone: they were only rung, and someone else took the caller.
    """
    released = bool(r.eval(_RELEASE, 1, Keys.lease(specialist_id), holder))
    if released and not keep_place:
        now = time.time()
        pipe = r.pipeline()
        for language in LANGUAGES:
            # XX: only where they are still switched on; someone who texted OFF stays off.
            pipe.zadd(Keys.available(language), {str(specialist_id): now}, xx=True)
        pipe.execute()
    if released:
        specialist_freed.send(None, specialist_id=specialist_id)
    return released


def lease_holder(r: redis.Redis, specialist_id: int) -> str | None:
    value = r.get(Keys.lease(specialist_id))
    return value.decode() if value else None


def lease_holders(r: redis.Redis, specialist_ids: list[int]) -> dict[int, str]:
    """Who holds each of these specialists, in one round trip (for the live board)."""
    if not specialist_ids:
        return {}
    values = r.mget([Keys.lease(i) for i in specialist_ids])
    return {i: v.decode() for i, v in zip(specialist_ids, values, strict=True) if v}


def mark_tried(r: redis.Redis, call_key: str, specialist_id: int, seconds: int = 24 * 3600) -> None:
    """Skip this specialist for this call (or callback) for `seconds`."""
    pipe = r.pipeline()
    pipe.sadd(Keys.tried(call_key), specialist_id)
    pipe.expire(Keys.tried(call_key), seconds)
    pipe.execute()


def free_count(r: redis.Redis, language: str) -> int:
    """How many switched-on specialists for `language` nobody holds right now."""
    members = [m.decode() for m in r.zrange(Keys.available(language), 0, -1)]
    if not members:
        return 0
    return sum(1 for held in r.mget([Keys.lease(m) for m in members]) if held is None)


def on_count(r: redis.Redis, language: str) -> int:
    """How many specialists for `language` are switched on (free or busy)."""
    return int(r.zcard(Keys.available(language)))


def set_idle_queue(r: redis.Redis, specialist_id: int, languages: list[str], on: bool) -> None:
    """Put a specialist in (or take them out of) the idle queues for their languages."""
    pipe = r.pipeline()
    now = time.time()
    for language in LANGUAGES:
        key = Keys.available(language)
        if on and language in languages:
            # NX: switching ON twice must not send someone who waited long to the back.
            pipe.zadd(key, {str(specialist_id): now}, nx=True)
        else:
            pipe.zrem(key, str(specialist_id))
    pipe.execute()
