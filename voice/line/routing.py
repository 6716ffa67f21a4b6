"""Who takes a call: the atomic claim of the longest-idle specialist, leases, and release."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

import redis
from blinker import Namespace

from voice.redisdb import Keys

_signals = Namespace()
# Sent (with specialist_id) whenever a specialist may have become free: switched on, or a call ended.
specialist_freed = _signals.signal("specialist-freed")

# Take up to ARGV[5] specialists from the language's idle queue whom nobody holds and who have not been tried for
# this caller: the preferred first, tier by tier (ARGV[7...] are "id:tier", tier 0 first), each tier longest idle
# first; then, unless ARGV[6] says only the preferred, everyone else longest idle first. One script, so two callers
# can never claim the same person.
_CLAIM = """
local tier_of = {}
local tiers = 0
for i = 7, #ARGV do
  local id, tier = string.match(ARGV[i], '^(%d+):(%d+)$')
  tier = tonumber(tier)
  if tier_of[id] == nil or tier < tier_of[id] then tier_of[id] = tier end
  if tier + 1 > tiers then tiers = tier + 1 end
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local order = {}
for t = 0, tiers - 1 do
  for _, id in ipairs(members) do
    if tier_of[id] == t then table.insert(order, id) end
  end
end
if ARGV[6] == '' then
  for _, id in ipairs(members) do
    if tier_of[id] == nil then table.insert(order, id) end
  end
end
local taken = {}
for _, id in ipairs(order) do
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
# a specialist who has since been given someone else. Released, they go to the back of every idle queue they are
# still in (ARGV[4] is now; XX: someone who texted OFF stays off), unless ARGV[5] says they keep their place.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[5] == '' then
    for _, language in ipairs(redis.call('SMEMBERS', KEYS[2])) do
      redis.call('ZADD', ARGV[2] .. language, 'XX', ARGV[4], ARGV[3])
    end
  end
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
    preferred: Sequence[Collection[int]] = (),
    preferred_only: bool = False,
) -> list[int]:
    """Atomically take up to `limit` free specialists for `language`, in the order they should be rung.

    `preferred` lists tiers of specialist ids: tier by tier, each longest idle first, then everyone else longest
    idle first (nobody else when `preferred_only`). Only those in the language's idle queue can be taken.
    """
    tiers = [f"{specialist_id}:{tier}" for tier, ids in enumerate(preferred) for specialist_id in ids]
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
        "1" if preferred_only else "",
        *tiers,
    )
    return [int(x) for x in result or []]


def claim_next_specialist(
    r: redis.Redis,
    language: str,
    holder: str,
    lease_seconds: int,
    tried_key: str | None = None,
    only: int | None = None,
    preferred: Sequence[Collection[int]] = (),
) -> int | None:
    """Atomically take the free specialist for `language` who comes first (`preferred`, then the longest idle)."""
    taken = claim_specialists(r, language, holder, lease_seconds, tried_key, only, limit=1, preferred=preferred)
    return taken[0] if taken else None


def extend_lease(r: redis.Redis, specialist_id: int, holder: str, seconds: int) -> bool:
    """Keep holding a specialist (they accepted); False if the lease is gone or someone else's."""
    return bool(r.eval(_EXTEND, 1, Keys.lease(specialist_id), holder, int(seconds * 1000)))


def release_specialist(r: redis.Redis, specialist_id: int, holder: str, keep_place: bool = False) -> bool:
    """Free a specialist held by `holder` and put them at the back of the idle queues.

    `keep_place` leaves their idle-since time alone: they were only rung, and someone else took the caller.
    """
    released = bool(r.eval(_RELEASE, 2, Keys.lease(specialist_id), Keys.language_queues(), holder,
                           Keys.available(""), str(specialist_id), time.time(), "1" if keep_place else ""))
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
    """Put a specialist in the idle queues for their languages and take them out of every other (or all, off)."""
    known = language_queues(r) | set(languages)
    pipe = r.pipeline()
    now = time.time()
    if on and languages:
        pipe.sadd(Keys.language_queues(), *languages)
    for language in sorted(known):
        key = Keys.available(language)
        if on and language in languages:
            # NX: switching ON twice must not send someone who waited long to the back.
            pipe.zadd(key, {str(specialist_id): now}, nx=True)
        else:
            pipe.zrem(key, str(specialist_id))
    pipe.execute()


def language_queues(r: redis.Redis) -> set[str]:
    """Every language with an idle queue."""
    return {m.decode() for m in r.smembers(Keys.language_queues())}
