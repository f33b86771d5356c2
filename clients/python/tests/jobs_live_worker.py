"""The job code of `test_jobs_live.py`: one Celery task and one arq function, each checking one
action with the job's identity and answering what Warden said.

The Celery worker is a process of its own (`celery -A jobs_live_worker worker`, started by the
test with this directory as its working directory), configured by the environment:
`JOBS_LIVE_BROKER` (the Redis URL of the broker and the result backend) and
`JOBS_LIVE_WARDEN_URL`. The test process imports the same module to enqueue, and sets the
broker on `celery_app` itself. The arq function runs in an arq worker in the test process.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from warden import (
    AsyncWardenClient,
    Decision,
    JobDeniedError,
    WardenClient,
    authorize_job,
    authorize_job_async,
    current_identity,
)
from warden.jobs import arq_job, celery_job

BROKER = os.environ.get("JOBS_LIVE_BROKER", "redis://127.0.0.1:1/0")
CELERY_QUEUE = "warden-jobs"
ARQ_FUNCTION = "check_document"

celery_app = Celery("jobs_live_worker", broker=BROKER, backend=BROKER, set_as_current=False)
celery_app.conf.update(
    task_default_queue=CELERY_QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    result_expires=600,
)


def outcome(decision: Decision | None, denied: JobDeniedError | None) -> dict[str, Any]:
    """What a job answers: allowed or not, why, by which decision, for which principal, and
    whom the job believed it acted for."""
    identity = current_identity()
    shown = decision if decision is not None else (denied.decision if denied else None)
    return {
        "allowed": decision is not None,
        "reason": shown.reason if shown is not None else (denied.reason if denied else None),
        "decision_id": shown.decision_id if shown is not None else None,
        "principal": shown.principal.id if shown is not None else None,
        "subject": identity.subject,
        "tenant": identity.tenant,
        "actors": [actor.subject for actor in identity.actors],
    }


@celery_app.task(name="jobs_live.check_document")
@celery_job
def check_document(action: str, resource_id: str) -> dict[str, Any]:
    """Check `action` on a document as the job's user, in the Celery worker."""
    with WardenClient(os.environ["JOBS_LIVE_WARDEN_URL"], timeout=10.0) as client:
        try:
            return outcome(authorize_job(client, action, "Document", resource_id), None)
        except JobDeniedError as denied:
            return outcome(None, denied)


@arq_job
async def check_document_arq(ctx: dict[str, Any], action: str, resource_id: str) -> dict[str, Any]:
    """The same check in an arq worker; `ctx["warden_url"]` is Warden's URL."""
    async with AsyncWardenClient(ctx["warden_url"], timeout=10.0) as client:
        try:
            return outcome(await authorize_job_async(client, action, "Document", resource_id), None)
        except JobDeniedError as denied:
            return outcome(None, denied)
