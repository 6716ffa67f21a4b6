"""RQ jobs: callbacks placed by a worker. Jobs take ids, re-read SQL, and are safe to run twice."""
