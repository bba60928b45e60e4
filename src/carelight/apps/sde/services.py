"""The SDE services one app holds: jobs and their background queue, made on first use."""

from __future__ import annotations

import threading

from carelight.sde.jobs.records import JobQueue, Jobs

_LOCK = threading.Lock()


def jobs_of(app) -> Jobs:
    with _LOCK:
        jobs = getattr(app.state, "sde_jobs", None)
        if jobs is None or jobs.trail is not app.state.trail:
            jobs = app.state.sde_jobs = Jobs(
                app.state.store.engine, app.state.trail, app.state.settings
            )
            app.state.sde_job_queue = JobQueue(jobs)
        return jobs


def queue_of(app) -> JobQueue:
    jobs_of(app)
    return app.state.sde_job_queue
