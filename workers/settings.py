"""`rq worker -c workers.settings`: build the Flask app once in the worker, before it forks a horse per job.

Without this every job would build the app anew in its fresh work-horse, adding half a second to the
moment between a specialist texting ON and their phone ringing.
"""

from workers.jobs import preload_app

preload_app()
