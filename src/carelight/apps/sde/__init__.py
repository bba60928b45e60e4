"""The secure data environment's web app at ``/sde``, for researchers (projects, jobs,
outputs, released files), the data access committee (decisions, activation, accreditation)
and output checkers (the queue, the safe file and its evidence, the blind vote). Server-rendered
on the NHS.UK frontend; sign-in through the web session. Every rule is the SDE's own
(``carelight.sde.governance``, ``carelight.sde.jobs.records``, ``carelight.sde.review``): the
pages only call them."""

from carelight.apps.sde.routes import public_router, router

__all__ = ["public_router", "router"]
