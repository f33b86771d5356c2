"""Warden's Python SDK: ask Warden whether a verified principal may act on a resource.

`WardenClient` / `AsyncWardenClient` talk to Warden; `warden.fastapi` (extra `fastapi`)
protects FastAPI routes with them.
"""

from warden.client import AsyncWardenClient, WardenClient
from warden.errors import (
    InvalidTokenError,
    WardenError,
    WardenProtocolError,
    WardenRequestError,
    WardenUnavailableError,
)
from warden.models import (
    Authentication,
    Decision,
    Entity,
    Evaluation,
    EvaluationRequest,
    PolicyReason,
    Principal,
)

__all__ = [
    "AsyncWardenClient",
    "Authentication",
    "Decision",
    "Entity",
    "Evaluation",
    "EvaluationRequest",
    "InvalidTokenError",
    "PolicyReason",
    "Principal",
    "WardenClient",
    "WardenError",
    "WardenProtocolError",
    "WardenRequestError",
    "WardenUnavailableError",
]
