"""`rq cron -c workers.settings workers.cron`: the periodic sweep that catches anything an event missed
(and rebuilds Redis from SQL), and the nightly purge of personal data past RETENTION_DAYS."""

from rq import cron

from voice.health import note_cron_run
from voice.redisdb import get_redis
from voice.tasks import FAILURE_TTL_SECONDS, QUEUE_NAME, RESULT_TTL_SECONDS
from workers.jobs import job_context, sweep
from workers.purge import purge_personal_data

SWEEP_SECONDS = 60
# 03:30 in the cron process's local time (rq matches cron fields to local time): a quiet hour for the line.
PURGE_CRON = "30 3 * * *"
# A first purge of years of calls asks Twilio to delete each recording (~0.3 s apiece).
PURGE_JOB_TIMEOUT = 3 * 3600


def sweep_and_note_run() -> dict:
    """The sweep, then a note of when it ran, so the dashboard can say when the sweep has stopped."""
    with job_context():
        summary = sweep()
        note_cron_run(get_redis())
    return summary


cron.register(sweep_and_note_run, QUEUE_NAME, interval=SWEEP_SECONDS, job_timeout=120,
              result_ttl=RESULT_TTL_SECONDS, failure_ttl=FAILURE_TTL_SECONDS)
cron.register(purge_personal_data, QUEUE_NAME, cron=PURGE_CRON, job_timeout=PURGE_JOB_TIMEOUT,
              result_ttl=RESULT_TTL_SECONDS, failure_ttl=FAILURE_TTL_SECONDS)
