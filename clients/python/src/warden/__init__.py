"""Warden's Python SDK: ask Warden whether a verified principal may act on a resource.

`WardenClient` / `AsyncWardenClient` talk to Warden; `warden.fastapi` (extra `fastapi`)
protects FastAPI routes with them, and `warden.sqlalchemy` (extra `sqlalchemy`) turns a data
filter plan (`FilterPlan`, from `POST /v1/filter`) into a query's `WHERE` clause.
`ServiceAccountTokens` / `AsyncServiceAccountTokens` get a service account's access tokens
from Warden, and `ServiceAccountAuth` sends them on the caller's own `httpx2` requests to
other services.
"""

from warden.client import AsyncWardenClient, WardenClient
from warden.errors import (
    FilterMappingError,
    FilterUnsupportedError,
    InvalidTokenError,
    TokenRequestError,
    WardenError,
    WardenProtocolError,
    WardenRequestError,
    WardenUnavailableError,
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

__all__ = [
    "AsyncServiceAccountTokens",
    "AsyncWardenClient",
    "Authentication",
    "Check",
    "Decision",
    "Entity",
    "EntityRef",
    "Evaluation",
    "EvaluationRequest",
    "FilterMappingError",
    "FilterPlan",
    "FilterUnsupportedError",
    "InvalidTokenError",
    "PolicyReason",
    "Principal",
    "ServiceAccountAuth",
    "ServiceAccountTokens",
    "TokenRequestError",
    "WardenClient",
    "WardenError",
    "WardenProtocolError",
    "WardenRequestError",
    "WardenUnavailableError",
]
