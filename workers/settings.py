"""`rq worker -c workers.settings` and `rq cron -c workers.settings`: RQ's settings, taken from the app's own.

The app is built once here, in the worker before it forks a horse per job. Without this every job would
build the app anew in its fresh work-horse, adding half a second to the moment between a specialist texting
ON and their phone ringing. RQ reads REDIS_URL from this module (unless `--url` is given), so the worker
and cron use the very Redis the web app uses: the same environment and `.env`, the same default.
"""

from workers.jobs import preload_app

REDIS_URL = preload_app().config["REDIS_URL"]
