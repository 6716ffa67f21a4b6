"""The outcome job: POST one closed call's or case's report to the 911 center (voice/reporting/outcomes.py).

A receiver that is down or answers 5xx, 408 or 429 makes the job fail, and RQ's Retry (OUTCOME_RETRY_SECONDS)
runs it again; the sweep takes over once RQ has given up. Any other 4xx will not change by asking again, so the
job ends there (the report stays failed, on the dashboard, and the sweep tries it hourly in case the receiver is
fixed). The job re-reads the report and claims it first, so a run twice never POSTs a delivered report again.
"""

from __future__ import annotations

import logging

from flask import current_app

from voice import db as database
from voice.reporting import outcomes
from workers.jobs import job_context

log = logging.getLogger("workers.outcomes")


def deliver_outcome(report_id: int) -> str:
    with job_context():
        try:
            return outcomes.deliver(database.session(), report_id, current_app.config)
        except outcomes.NotDelivered as error:
            if not error.permanent:
                raise
            log.warning("outcome report %s refused: %s", report_id, error)
            return f"refused: {error}"
