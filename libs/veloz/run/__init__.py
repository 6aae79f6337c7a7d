"""Running a service: server settings, the granian and gunicorn glue, draining, background jobs."""
