"""The field-safety jobs: the ladder's timers and the texts and calls it makes (voice/casework/field_safety.py).

Each takes ids, re-reads SQL and does nothing once the visit or alert has moved on, so a job run twice (or
queued again by the sweep) changes nothing. Texts and calls are claimed in SQL before they go; a failure that
may pass is given back for RQ's retry, and a final one is on the timeline and the board and stops nothing.
Safety calls are tried even while Twilio is marked down: a wasted request costs seconds, a skipped one a team.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from rq.job import Job

from voice import db as database
from voice import twilio_rest
from voice.casework import field_safety, field_texts
from voice.models import SafetyContact
from voice.redisdb import get_redis
from voice.twilio_rest import TwilioError
from voice.twiml import webhook_url
from workers.jobs import job_context

log = logging.getLogger("workers.field_safety")


def team_due(visit_id: int, due_back: str) -> str:
    """The timer at due back + the grace: ask the team whether they are safe, unless they moved on."""
    with job_context():
        db = database.session()
        alert = field_safety.ask_team(db, get_redis(), current_app.config, visit_id, datetime.fromisoformat(due_back))
        db.commit()
        return f"alert {alert.id}" if alert else "nothing to do"


def next_rung(alert_id: int, rung: str) -> str:
    """The timer of a rung: climb to the next, unless someone acknowledged or the alert closed."""
    with job_context():
        db = database.session()
        climbed = field_safety.next_rung(db, get_redis(), current_app.config, alert_id, rung)
        db.commit()
        return "climbed" if climbed else "nothing to do"


def deliver(contact_id: int) -> str:
    """Send one text or place one call of the ladder, once."""
    with job_context():
        db = database.session()
        r = get_redis()
        config = current_app.config
        contact = db.get(SafetyContact, contact_id)
        if contact is None or contact.status != "pending":
            return "nothing to do"
        if not field_safety.still_owed(contact):
            field_safety.skip(db, contact)
            db.commit()
            return "skipped"
        if not field_safety.claim(db, contact, config):
            return "taken"
        db.commit()
        try:
            if contact.channel == "text":
                sid = twilio_rest.noting_health(r, twilio_rest.send_sms, config, contact.number,
                                                field_texts.outgoing(contact, config))
            else:
                sid = twilio_rest.noting_health(
                    r, twilio_rest.place_call, config, contact.number,
                    webhook_url("/voice/safety/call", contact=contact.id),
                    status_callback=webhook_url("/voice/safety/status", contact=contact.id),
                    timeout=field_safety.RING_SECONDS)
        except TwilioError as error:
            if not error.permanent:
                field_safety.give_back(db, contact, str(error))
                db.commit()
                raise  # RQ's Retry tries again (REST_RETRY_SECONDS); delivery_failed settles the last one
            log.warning("safety %s %s not sent: %s", contact.channel, contact.purpose, error)
            field_safety.contact_failed(db, r, config, contact, f"Twilio refused: {error}")
            db.commit()
            return "refused"
        field_safety.contact_sent(db, contact, sid, config)
        db.commit()
        return sid


def delivery_failed(job: Job, connection, error_type, error, traceback) -> None:
    """RQ failure callback for deliver: after the last retry the text or call counts as failed."""
    if job.retries_left:
        return  # RQ will run it again
    with job_context():
        db = database.session()
        contact = db.get(SafetyContact, job.args[0])
        if contact is not None and contact.status in ("pending", "sending"):
            field_safety.contact_failed(db, get_redis(), current_app.config, contact,
                                        f"{error_type.__name__}: {error}")
            db.commit()
