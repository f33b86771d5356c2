"""Schemathesis hooks for scripts/schemathesis.sh: the fuzzer must not lock itself out.

What it is: a `before_call` hook, loaded through SCHEMATHESIS_HOOKS. The run authenticates with
one admin credential and one service account; schemathesis learns their ids from list answers
(GET /v1/admin/credentials, GET …/service-accounts) and, left alone, revokes or rotates the
credential, or disables, deletes or retires the service account, after which every later call
of the run that needs them is a 401 and fuzzes nothing past authentication. This hook sends such
a call (a DELETE, or a POST ending in /rotate, /revoke, /disable or /retire) to an id of the same
shape that does not exist instead (a 404), so every other id, including the credentials and
accounts schemathesis makes itself, is rotated and revoked as generated. A review decision that
revokes (POST …/reviews/{id}/items/{item} with "decision": "revoke") could disable the protected
service account through its review item, so it is sent to an item that does not exist (a 404).
What it is not: a filter on anything else; it changes no other request.

WARDEN_PROTECTED_IDS: the ids to keep usable, separated by spaces (adm_…, sa_…, cred_…).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

PROTECTED_IDS = frozenset(os.environ.get("WARDEN_PROTECTED_IDS", "").split())
DISABLING_ENDINGS = ("/rotate", "/revoke", "/disable", "/retire")


def stand_in(value: str) -> str:
    """An id of the same shape that names nothing: `adm_3f09c2a1b4d7` -> `adm_000000000000`."""
    prefix, _, rest = value.partition("_")
    return f"{prefix}_{'0' * len(rest)}"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    method = case.method.upper()
    if (
        method == "POST"
        and "/reviews/" in case.path
        and case.path.endswith("/items/{item}")
        and isinstance(case.body, dict)
        and case.body.get("decision") == "revoke"
    ):
        (case.path_parameters or {})["item"] = "0"
        return
    if method != "DELETE" and not (
        method == "POST" and case.path.endswith(DISABLING_ENDINGS)
    ):
        return
    parameters = case.path_parameters or {}
    for name, value in list(parameters.items()):
        if isinstance(value, str) and value in PROTECTED_IDS:
            parameters[name] = stand_in(value)
