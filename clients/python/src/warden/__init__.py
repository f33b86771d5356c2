"""Warden's Python SDK: ask Warden whether a verified principal may act on a resource.

`WardenClient` / `AsyncWardenClient` talk to Warden; `warden.fastapi` (extra `fastapi`)
protects FastAPI routes with them. `ServiceAccountTokens` / `AsyncServiceAccountTokens` get a
service account's access tokens from Warden, and `ServiceAccountAuth` sends them on the
caller's own `httpx2` requests to other services.
"""

from warden.client import AsyncWardenClient, WardenClient
from warden.errors import (
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
    Evaluation,
    EvaluationRequest,
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
    "Evaluation",
    "EvaluationRequest",
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
