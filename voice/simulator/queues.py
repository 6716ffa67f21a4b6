"""Call queues: <Enqueue> on the caller's leg, <Dial><Queue> on the dialer's, and the REST API's dequeue.

https://www.twilio.com/docs/voice/twiml/enqueue, https://www.twilio.com/docs/voice/twiml/queue,
https://www.twilio.com/docs/voice/api/queue-resource
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 (types only; parsing goes through defusedxml)
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from voice.simulator.legs import (
    CallRecord,
    Canceled,
    Dequeued,
    Disconnected,
    HungUpByApi,
    Leg,
    Redirected,
    TwiMLError,
    new_sid,
    resolve,
)


@dataclass(eq=False)
class Queue:
    """A call queue, created on demand by <Enqueue> (https://www.twilio.com/docs/voice/api/queue-resource)."""

    name: str
    sid: str
    members: list[Member] = field(default_factory=list)
    waited: list[float] = field(default_factory=list)
    max_size: int = 100
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def average_wait(self) -> int:
        return int(sum(self.waited) / len(self.waited)) if self.waited else 0


@dataclass(eq=False)
class Member:
    leg: Leg
    queue: Queue
    enqueued_clock: float
    enqueued_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Set (under the phone's lock) by whoever takes this member out: a dialer's bridge, or a REST dequeue.
    bridge: Bridge | None = None
    dequeue_target: object | None = None


@dataclass(eq=False)
class Bridge:
    """A dialer and a dequeued caller: dequeued -> connected -> ended, or dequeued -> abandoned."""

    dialer: Leg
    caller: Leg
    queue: Queue
    url: str | None
    state: str = "dequeued"
    ended_clock: float = 0.0
    talked: float = 0.0


class QueueNotEmpty(Exception):
    """DELETE of a queue that still holds callers (the Queue resource removes only an empty queue)."""


class QueueCalls:
    """The phone's queues (a mixin of SimulatedPhone): callers wait in them between <Enqueue> and a dequeue."""

    def dequeue_member(self, queue_sid: str, call_sid: str, url: str) -> Member:
        """Take one member out of a queue and run `url` on its call (the Member resource's update).

        https://www.twilio.com/docs/voice/api/member-resource: "Front" names the member at the front.
        KeyError when the queue or member is not there.
        """
        with self._lock:
            queue = next(q for q in self.queues.values() if q.sid == queue_sid) if queue_sid else None
            if queue is None:
                raise KeyError(queue_sid)
            candidates = queue.members[:1] if call_sid == "Front" else [m for m in queue.members if m.leg.sid == call_sid]
            if not candidates:
                raise KeyError(call_sid)
            member = candidates[0]
            queue.members.remove(member)
            member.dequeue_target = (url, {})
        member.leg.wake.set()
        return member


    def delete_queue(self, queue_sid: str) -> Queue:
        """Remove an empty queue (the Queue resource's DELETE); KeyError if unknown, QueueNotEmpty if it isn't.

        https://www.twilio.com/docs/voice/api/queue-resource: "Remove an empty queue", and "Queues persist. To
        optimize fetch operations, inactive Queues should be deleted." What Twilio answers for a queue that still
        holds callers is not documented; refusing is the safe choice (deleting it would strand them).
        """
        with self._lock:
            name, queue = next(((n, q) for n, q in self.queues.items() if q.sid == queue_sid), (None, None))
            if queue is None:
                raise KeyError(queue_sid)
            if queue.members:
                raise QueueNotEmpty(f"Queue {queue_sid} still has {len(queue.members)} member(s)")
            del self.queues[name]
        return queue

    def _enqueue(self, leg: Leg, record: CallRecord, verb: ET.Element, url: str):
        """Wait in a queue until dequeued, Leave, a hangup or a REST change: the next request, an ending, or None.

        https://www.twilio.com/docs/voice/twiml/enqueue
        """
        name = (verb.text or "").strip()
        action = resolve(url, verb.get("action"))
        wait_url = resolve(url, verb.get("waitUrl"))
        for attribute in ("method", "waitUrlMethod"):
            if (verb.get(attribute) or "POST").upper() != "POST":
                record.problem(f"unsupported: the simulator only requests with POST ({attribute} at {url})")
        with self._lock:
            queue = self.queues.get(name)
            if queue is None:
                queue = self.queues[name] = Queue(name, new_sid("QU"))
            if len(queue.members) >= queue.max_size:
                member = None
            else:
                member = Member(leg, queue, self._now(leg))
                queue.members.append(member)
                leg.member = member
                # Holding takes many waitUrl requests; Twilio has no such limit, the simulator only stops loops.
                leg.request_limit = max(leg.request_limit, 400)
        if member is None:
            record.say("network", f"queue {name!r} is full")
            return (action, {"QueueResult": "queue-full", "QueueSid": queue.sid, "QueueTime": "0"}) if action else None
        record.say("network", f"{leg.party.label} waits in queue {name!r}")

        def action_params(result: str) -> dict:
            return {"QueueResult": result, "QueueSid": queue.sid, "QueueTime": str(self._queue_time(member))}

        try:
            outcome = self._wait_in_queue(leg, record, member, wait_url)
        except Dequeued:
            with self._lock:
                bridge, target = member.bridge, member.dequeue_target
                leg.member = None
            self._left_queue(member)
            if bridge is None:
                # Dequeued through the REST API (Member resource): its Url runs on the call, the action is told
                # "redirected" ("redirected out of the queue, typically by a REST API request"), TwiML ignored.
                if action:
                    self._post(leg, record, action, action_params("redirected"), follow=False)
                raise Redirected(target) from None
            return self._bridge_from_queue(leg, record, member, bridge, action, action_params)
        except Redirected:
            self._leave_queue(leg, member)
            if action:
                self._post(leg, record, action, action_params("redirected"), follow=False)
            raise
        except (HungUpByApi, Canceled, Disconnected):
            self._leave_queue(leg, member)
            if action:
                self._post(leg, record, action, action_params("hangup"), follow=False)
            raise
        except TwiMLError:
            # Twilio's QueueResult would be "error"; the simulator treats a bad wait document as the fault it is:
            # a problem, and the caller hears Twilio's error (safe either way: the test fails).
            self._leave_queue(leg, member)
            raise
        self._leave_queue(leg, member)
        if outcome == "leave":
            record.say("network", f"{leg.party.label} leaves queue {name!r}")
            # https://www.twilio.com/docs/voice/twiml/leave: with no action, the verb after <Enqueue> runs next.
            return (action, action_params("leave")) if action else None
        # The caller hung up (or the app hung up on them) while waiting: the action is told, its TwiML ignored.
        if action:
            self._post(leg, record, action, action_params("hangup"), follow=False)
        return outcome

    def _queue_time(self, member: Member) -> int:
        return int(self._now(member.leg) - member.enqueued_clock)

    def _leave_queue(self, leg: Leg, member: Member) -> None:
        """Take the member out (unless someone took it first: then that bridge is abandoned)."""
        with self._lock:
            leg.member = None
            if member in member.queue.members:
                member.queue.members.remove(member)
                taken = None
            else:
                taken = member.bridge
            if taken is not None and taken.state == "dequeued":
                taken.state = "abandoned"
        self._left_queue(member)
        if taken is not None:
            taken.dialer.wake.set()

    def _left_queue(self, member: Member) -> None:
        with self._lock:
            member.queue.waited.append(self._now(member.leg) - member.enqueued_clock)

    def _wait_in_queue(self, leg: Leg, record: CallRecord, member: Member, wait_url: str | None) -> str:
        """Run the waitUrl again and again: "leave", "party-hangup", "app-hangup" or "error"; raises on a dequeue."""
        for _ in range(self.max_wait_cycles):
            self._checkpoint(leg)
            if wait_url is None:
                # Twilio's default hold music.
                self._tell(leg, record, "[hold music]")
                self._wait(leg, self.play_seconds, idle=True)
                continue
            with self._lock:
                queue = member.queue
                position = queue.members.index(member) + 1 if member in queue.members else 1
                params = {"QueueSid": queue.sid, "QueuePosition": str(position),
                          "QueueTime": str(self._queue_time(member)), "AvgQueueTime": str(queue.average_wait()),
                          "CurrentQueueSize": str(len(queue.members)), "MaxQueueSize": str(queue.max_size)}
            outcome = self._run_document(leg, record, (wait_url, params), "wait")
            if outcome != "end":
                return outcome
            self._wait(leg, 0, idle=True)
        raise TwiMLError(f"loop: the waitUrl {wait_url} was requested {self.max_wait_cycles} times")

    def _bridge_from_queue(self, leg: Leg, record: CallRecord, member: Member, bridge: Bridge,
                           action: str | None, action_params: Callable[[str], dict]):
        """The caller's side of a dequeue: hear the Queue url, talk until the bridge ends, then the action."""
        queue_time = self._queue_time(member)
        params = {"QueueSid": bridge.queue.sid, "QueueTime": str(queue_time),
                  # Twilio's docs spell it so: https://www.twilio.com/docs/voice/twiml/queue
                  "DequeingCallSid": bridge.dialer.sid}
        result = "bridged"
        try:
            if bridge.url:
                self._run_document(leg, record, (bridge.url, params), "dequeue")
            with self._lock:
                if bridge.state != "dequeued":
                    raise TwiMLError("stuck: the dialer left before the bridge")
                leg.counted = bridge.dialer.counted = max(leg.counted, bridge.dialer.counted)
                bridge.state = "connected"
                leg.bridge = bridge
            bridge.dialer.wake.set()
            dialer = bridge.dialer
            record.bridged_with.append(dialer.number)
            dialer.record.bridged_with.append(leg.number)
            self._mark_bridge(record, dialer.party)
            record.say("network", f"{leg.party.label} and {dialer.party.label} are connected")
            self._wait(leg, None, until=lambda: bridge.state == "ended")
        except Redirected:
            # "redirected-from-bridged: the queued and then successfully bridged session was transferred out."
            result = "redirected-from-bridged" if bridge.state == "connected" else "redirected"
            self._end_bridge(leg, bridge)
            if action:
                self._post(leg, record, action, {**action_params(result), "QueueTime": str(queue_time)}, follow=False)
            raise
        except (HungUpByApi, Canceled, Disconnected):
            self._end_bridge(leg, bridge)
            if action:
                self._post(leg, record, action, {**action_params(result), "QueueTime": str(queue_time)}, follow=False)
            raise
        except TwiMLError:
            self._end_bridge(leg, bridge)
            raise
        finally:
            leg.bridge = None
        leg.counted = max(leg.counted, bridge.ended_clock)
        record.say("network", f"the bridge with {bridge.dialer.party.label} ends")
        # Twilio: "the action URL is hit once when the bridged parties disconnect".
        if action:
            return action, {**action_params("bridged"), "QueueTime": str(queue_time)}
        return None

    def _end_bridge(self, leg: Leg, bridge: Bridge) -> None:
        with self._lock:
            if bridge.state == "dequeued":
                bridge.state = "abandoned"
            elif bridge.state == "connected":
                bridge.state = "ended"
                bridge.ended_clock = self._now(leg)
        bridge.dialer.wake.set()
        bridge.caller.wake.set()

    def _claim(self, queue: Queue, dialer: Leg, url: str | None) -> Bridge | None:
        """Take the member at the front of the queue for this dialer (never the same member for two)."""
        with self._lock:
            for member in list(queue.members):
                if member.leg.status == "in-progress" and member.bridge is None and member.dequeue_target is None:
                    queue.members.remove(member)
                    member.bridge = Bridge(dialer, member.leg, queue, url)
                    member.leg.wake.set()
                    return member.bridge
        return None

    def _dial_queue(self, leg: Leg, record: CallRecord, verb: ET.Element, noun: ET.Element, url: str):
        """<Dial><Queue>: bridge with the caller at the front, talk, then the Dial action.

        https://www.twilio.com/docs/voice/twiml/queue
        """
        name = (noun.text or "").strip()
        action = resolve(url, verb.get("action"))
        queue_url = resolve(url, noun.get("url"))
        with self._lock:
            queue = self.queues.get(name)
        if queue is None:
            # "If the queue does not exist, Dial will post an error status to its action URL."
            record.say("network", f"queue {name!r} does not exist")
            return (action, {"DialCallStatus": "failed", "DialCallDuration": "0"}) if action else None
        record.say("network", f"dialing queue {name!r}")
        claimed: list[Bridge] = []

        def take() -> bool:
            bridge = self._claim(queue, leg, queue_url)
            if bridge is not None:
                claimed.append(bridge)
            return bool(claimed)

        # "If the queue is empty, Dial will wait until the next person joins the queue or until the <Dial>
        # timeout duration is reached." (timeout: 30 s by default, https://www.twilio.com/docs/voice/twiml/dial)
        self._wait(leg, float(verb.get("timeout") or 30), until=take, idle=True)
        bridge = claimed[0] if claimed else None
        if bridge is not None:
            try:
                self._wait(leg, None, until=lambda: bridge.state in ("connected", "abandoned", "ended"))
            except BaseException:
                self._end_bridge(leg, bridge)
                raise
        if bridge is None or bridge.state == "abandoned":
            # Nobody to bridge with. What Twilio posts then is not documented: the action gets completed with
            # DialCallDuration 0 and no DialCallSid, so an app must look for DialCallSid (true on Twilio either way).
            record.say("network", f"nobody is waiting in queue {name!r}")
            params = {"DialCallStatus": "completed", "DialCallDuration": "0", "QueueSid": queue.sid}
            return (action, params) if action else None
        caller = bridge.caller
        started = self._now(leg)
        record.say("network", f"{leg.party.label} is connected with {caller.party.label} from queue {name!r}")
        try:
            # The conversation lasts the dialing party's talk time; it ends when they hang up (or the caller goes).
            self._wait(leg, leg.party.talk_seconds, until=lambda: bridge.state == "ended")
        finally:
            self._end_bridge(leg, bridge)
        duration = int(round(self._now(leg) - started))
        record.say("network", f"the bridge with {caller.party.label} ends after {duration} s")
        params = {"DialCallStatus": "completed", "DialCallSid": caller.sid, "DialCallDuration": str(duration),
                  "QueueSid": queue.sid}
        return (action, params) if action else None
