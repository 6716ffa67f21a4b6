"""`rq cron -c workers.settings workers.cron`: the periodic sweep that catches anything an event missed
(and rebuilds Redis from SQL)."""

from rq import cron

from voice.health import note_cron_run
from voice.redisdb import get_redis
from voice.tasks import QUEUE_NAME
from workers.jobs import job_context, sweep

SWEEP_SECONDS = 60


def sweep_and_note_run() -> dict:
    """The sweep, then a note of when it ran, so the dashboard can say when the sweep has stopped."""
    with job_context():
        summary = sweep()
        note_cron_run(get_redis())
    return summary


cron.register(sweep_and_note_run, QUEUE_NAME, interval=SWEEP_SECONDS, job_timeout=120)
