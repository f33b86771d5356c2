"""Warden's Python SDK: ask Warden whether a verified principal may act on a resource.

`WardenClient` / `AsyncWardenClient` talk to Warden; `warden.fastapi` (extra `fastapi`)
protects FastAPI routes with them, and `warden.sqlalchemy` (extra `sqlalchemy`) turns a data
filter plan (`FilterPlan`, from `POST /v1/filter`) into a query's `WHERE` clause.
`ServiceAccountTokens` / `AsyncServiceAccountTokens` get a service account's access tokens
from Warden, and `ServiceAccountAuth` sends them on the caller's own `httpx2` requests to
other services. `ContextTokenVerifier` (extra `gateway`) verifies the context token a gateway
passes inward after Warden allowed a request there (`warden.context_token`).
`TokenExchanger` / `AsyncTokenExchanger` exchange a user's token for a `JobIdentity`, which a
background job carries to act for that user, checked again when it runs (`warden.jobs`, with
its Celery, arq and asyncio adapters).

The SDK logs on the `warden` logger (and its child `warden.fastapi`): decision ids at DEBUG,
retries at INFO, Warden's 5xx causes, rejected requests and calls without an answer at
WARNING; never a token, a credential or a header. Like any library it only adds a
`NullHandler`: configure `logging` in the application to see the lines.
"""

import logging

from warden.client import AsyncWardenClient, WardenClient
from warden.context_token import ContextClaims, ContextTokenVerifier
from warden.errors import (
    ContextTokenError,
    FilterMappingError,
    FilterUnsupportedError,
    InvalidTokenError,
    JobDeniedError,
    JobIdentityError,
    TokenRequestError,
    WardenError,
    WardenProtocolError,
    WardenRequestError,
    WardenUnavailableError,
)
from warden.jobs import (
    Actor,
    AsyncTokenExchanger,
    JobIdentity,
    TokenExchanger,
    acting_as,
    authorize_job,
    authorize_job_async,
    current_identity,
)
from warden.models import (
    Authentication,
    Check,
    Decision,
    Entity,
    EntityRef,
    Evaluation,
    EvaluationRequest,
    FilterPlan,
    PolicyReason,
    Principal,
)
from warden.service_account import (
    AsyncServiceAccountTokens,
    ServiceAccountAuth,
    ServiceAccountTokens,
)

logging.getLogger("warden").addHandler(logging.NullHandler())

__all__ = [
    "Actor",
    "AsyncServiceAccountTokens",
    "AsyncTokenExchanger",
    "AsyncWardenClient",
    "Authentication",
    "Check",
    "ContextClaims",
    "ContextTokenError",
    "ContextTokenVerifier",
    "Decision",
    "Entity",
    "EntityRef",
    "Evaluation",
    "EvaluationRequest",
    "FilterMappingError",
    "FilterPlan",
    "FilterUnsupportedError",
    "InvalidTokenError",
    "JobDeniedError",
    "JobIdentity",
    "JobIdentityError",
    "PolicyReason",
    "Principal",
    "ServiceAccountAuth",
    "ServiceAccountTokens",
    "TokenExchanger",
    "TokenRequestError",
    "WardenClient",
    "WardenError",
    "WardenProtocolError",
    "WardenRequestError",
    "WardenUnavailableError",
    "acting_as",
    "authorize_job",
    "authorize_job_async",
    "current_identity",
]
