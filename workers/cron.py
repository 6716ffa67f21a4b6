"""`rq cron workers.cron`: the periodic sweep that catches anything an event missed (and rebuilds Redis from SQL)."""

from rq import cron

from voice.tasks import QUEUE_NAME
from workers.jobs import sweep

SWEEP_SECONDS = 60

cron.register(sweep, QUEUE_NAME, interval=SWEEP_SECONDS, job_timeout=120)
