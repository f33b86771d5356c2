"""The SDK's exceptions.

A deny is not an exception: it is a `Decision` whose `allowed` is false. Exceptions are for
what is not a decision: a token Warden refused, and a Warden that could not answer. The
second kind always means "no decision", so callers must fail closed on it.

Every exception says whether asking again can help (`retryable`): a Warden that did not
answer or answered 502/503/504 may answer later (`WardenUnavailableError`, `retryable`
true), a request Warden rejected (400, a wrong PEP credential: `WardenRequestError`) gets
the same answer however often it is sent. The client itself retries only connection
failures, within its deadline (see `warden.client`); `retryable` is for the caller's own
policy (a queue worker, a batch job). Tests: `tests/test_reliability.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warden.models import Decision

# Statuses after which the same request may be answered later: Warden unable to decide now
# (503), or a proxy in front of it without an answer (502, 504). A 500 is Warden's bug.
_RETRYABLE_STATUSES = frozenset({502, 503, 504})


class WardenError(Exception):
    """Base of every exception the SDK raises.

    `retryable` says whether the same request, sent again later and unchanged, may get
    another answer; false unless a subclass says otherwise.
    """

    retryable: bool = False


class InvalidTokenError(WardenError):
    """Warden refused the end user's bearer token (HTTP 401 from `/v1/check`, `/v1/checks`
    or `/v1/authenticate`).

    `reason` is Warden's reason code (`token_expired`, `token_signature_invalid`, …).
    """

    def __init__(self, reason: str, detail: str | None, www_authenticate: str | None) -> None:
        super().__init__(f"bearer token refused by Warden: {reason}")
        self.reason = reason
        self.detail = detail
        self.www_authenticate = www_authenticate


class ContextTokenError(WardenError):
    """A context token (`X-Warden-Context`, from a gateway) that this upstream does not accept.

    `reason` says why: `context_malformed`, `context_type_invalid` (header `typ` is not
    `warden-ctx+jwt`), `context_algorithm_refused` (not EdDSA or ES256), `context_key_unknown`
    (no such `kid` in Warden's JWKS), `context_signature_invalid`, `context_issuer_mismatch`,
    `context_audience_mismatch` (made for another upstream), `context_expired`,
    `context_not_yet_valid` or `context_claims_invalid`. Not `retryable`: the same token is
    refused again. `warden.fastapi` then makes the usual check with the bearer token. The
    message never quotes the token.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"context token refused: {reason}: {detail}")
        self.reason = reason
        self.detail = detail


class WardenUnavailableError(WardenError):
    """Warden gave no usable answer: unreachable, timed out, a 5xx, or a garbled body.

    Never treat this as an allow. The FastAPI integration turns it into 503.

    `status` is the HTTP status when Warden (or a proxy) answered, None when nothing
    answered; `reason` and `detail` come from the problem body of a 5xx (`reason` is the
    OAuth `error` code for the token endpoint), `retry_after` from its `Retry-After` header
    (seconds). `retryable` is true for no answer (refused, reset, timed out) and for 502,
    503 and 504; false for a 500 (a bug in Warden), a failed TLS handshake (a certificate
    or trust problem does not fix itself) and a garbled answer (`WardenProtocolError`).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        self.retryable = (
            retryable
            if retryable is not None
            else (status is None or status in _RETRYABLE_STATUSES)
        )


class WardenProtocolError(WardenUnavailableError):
    """Warden answered, but not in the shape this SDK understands.

    Not `retryable`: the same Warden gives the same answer (an SDK and a Warden that do not
    match, or a proxy answering in Warden's place).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, retryable=False)


class WardenRequestError(WardenError):
    """Warden rejected the request itself (HTTP 400, or 401/403 for the PEP credential).

    This is a bug or a misconfiguration on the calling side, not a decision; the FastAPI
    integration fails closed on it (503) and the message says what Warden objected to.
    Not `retryable` (the same request gets the same answer), except a 429 (rate limited),
    which may be sent again after `retry_after` seconds when Warden says so. `reason` is the
    problem body's reason code, when it has one.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"Warden rejected the request (HTTP {status}): {detail}")
        self.status = status
        self.detail = detail
        self.reason = reason
        self.retry_after = retry_after
        self.retryable = status == 429


class TokenRequestError(WardenError):
    """Warden's token endpoint refused to issue a token (an RFC 6749 §5.2 error answer).

    `error` is the OAuth error code: `invalid_client` (a wrong secret, or a disabled, deleted
    or expired account or credential), `invalid_scope` (a scope the account does not have;
    for a token exchange, one that the user and the account do not both hold),
    `invalid_request` (for a token exchange: among others, a subject token Warden refuses),
    `invalid_target` (an audience Warden does not allow), `unauthorized_client` (an account
    without the scope `warden:token-exchange`), `invalid_grant` or `unsupported_grant_type`.
    `description` is Warden's `error_description`, `status` the HTTP status (400 or 401).
    Retrying does not help: the account or the caller's configuration has to change.
    """

    def __init__(self, error: str, description: str | None, status: int) -> None:
        message = f"Warden refused the token request (HTTP {status}): {error}"
        super().__init__(f"{message}: {description}" if description else message)
        self.error = error
        self.description = description
        self.status = status


class FilterUnsupportedError(WardenError):
    """Warden cannot write a policy's condition as a data filter (HTTP 422 from `/v1/filter`,
    reason `filter_unsupported`).

    `policy` is the id of the policy that cannot be written (Warden never answers a broader
    filter instead). Retrying does not help: the policy, or how the list is made, has to
    change. The FastAPI integration fails closed on it (503, reason `filter_unsupported`).
    """

    def __init__(self, policy: str | None, detail: str) -> None:
        named = f" `{policy}`" if policy else ""
        super().__init__(f"Warden cannot write policy{named} as a data filter: {detail}")
        self.policy = policy
        self.detail = detail


class FilterMappingError(WardenError, ValueError):
    """A plan names what the application's field mapping does not map (a field, a set field,
    a `member_of` entity type, the resource id), or maps it to something that cannot take
    the value. Raised by `warden.sqlalchemy` when it renders a plan; never a broader query.
    """


class JobIdentityError(WardenError, ValueError):
    """A job's identity cannot be used: a payload that is not one `JobIdentity.to_payload`
    made (a missing, unknown or mistyped field, a token whose claims do not match it), or a
    job run without one (`warden.jobs.current_identity`, the Celery and arq decorators).

    Not `retryable`: the same payload is refused again. The message never quotes the token.
    """


class JobDeniedError(WardenError):
    """Warden did not allow what a job asked to do for its user (`warden.jobs.authorize_job`).

    `reason` is the deny's reason code (`no_permit`, `forbidden`, `tenant_boundary`,
    `principal_disabled`, …) or, when Warden refused the job's token, the token's
    (`token_revoked`, `token_expired`, …). `decision` is the deny (None when the token was
    refused: there was no decision). Not `retryable`: the user's rights, not the network,
    said no; a queue should fail the job rather than run it again.
    """

    def __init__(self, action: str, resource: str, reason: str, decision: Decision | None) -> None:
        decided = f" (decision {decision.decision_id})" if decision is not None else ""
        super().__init__(f"Warden did not allow {action} on {resource}: {reason}{decided}")
        self.action = action
        self.resource = resource
        self.reason = reason
        self.decision = decision
