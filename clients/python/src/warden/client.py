"""`WardenClient` (blocking) and `AsyncWardenClient`: the same API, the same answers.

Both hold one pooled connection to Warden for their lifetime; create one per process and
close it on shutdown (`with` / `async with` do that). Every method either returns an answer
(a decision, an identity for `authenticate`, a data-filter plan for `filter`, the results of
a search) or raises: an unreachable Warden, a timeout, a 5xx or a garbled answer is
`WardenUnavailableError`, never an allow.

The searches (`search_resources`, `search_subjects`, `search_actions`) are iterators that ask
for the next page only when the previous one is used up; their errors are raised while
iterating.

Reliability and TLS (see `warden._transport` for the rules): a call that fails on the
connection is tried again up to `retries` times, within `deadline` seconds for the whole
call. Every request these clients send only reads (decisions, identities, plans, searches,
readiness, Warden's keys), so all of them may be retried, even when Warden may have seen the first
attempt (the decision log then holds one record per attempt). `verify` and `cert` set whom
the client trusts and the certificate it presents over HTTPS.

Logging, on the `warden` logger: each decision's id at DEBUG (the id finds the full record
in Warden's decision log), a refused token's reason code at DEBUG, a 5xx with its problem
reason and detail and a rejected request at WARNING, retries at INFO, and no answer at
WARNING. No line holds a token, a credential or a header. Tests:
`tests/test_reliability.py`, `tests/test_tls.py`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, NoReturn, Self

from warden import _transport
from warden.errors import (
    FilterUnsupportedError,
    InvalidTokenError,
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
    FilterPlan,
    action_search_body,
    check_body,
    checks_body,
    evaluations_body,
    filter_body,
    parse_authentication,
    parse_decision,
    parse_decisions,
    parse_evaluation,
    parse_evaluations,
    parse_filter_plan,
    parse_search_page,
    resource_search_body,
    search_page_body,
    subject_search_body,
)

DEFAULT_URL = "http://127.0.0.1:8180"
DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 0.5
DEFAULT_RETRIES = 2
"""Further attempts after a connection failure (refused, reset); each within the deadline."""

CHECK_PATH = "/v1/check"
CHECKS_PATH = "/v1/checks"
AUTHENTICATE_PATH = "/v1/authenticate"
EVALUATION_PATH = "/access/v1/evaluation"
EVALUATIONS_PATH = "/access/v1/evaluations"
FILTER_PATH = "/v1/filter"
SEARCH_SUBJECT_PATH = "/access/v1/search/subject"
SEARCH_RESOURCE_PATH = "/access/v1/search/resource"
SEARCH_ACTION_PATH = "/access/v1/search/action"
READY_PATH = "/readyz"
JWKS_PATH = "/.well-known/jwks.json"
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"

_log = logging.getLogger("warden")


def _settings(
    base_url: str,
    timeout: float,
    connect_timeout: float,
    max_connections: int,
    *,
    retries: int = DEFAULT_RETRIES,
    deadline: float | None = None,
    verify: _transport.Verify = True,
    cert: _transport.ClientCert | None = None,
) -> _transport.TransportSettings:
    if timeout <= 0 or connect_timeout <= 0:
        raise ValueError("timeouts must be positive: a request without one can hang forever")
    if deadline is not None and deadline <= 0:
        raise ValueError("the deadline must be positive (None: the timeout)")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError("retries must be a whole number, 0 or more")
    base_url = base_url.rstrip("/")
    https = base_url.lower().startswith("https://")
    if cert is not None and not https:
        raise ValueError(f"a client certificate needs an https:// URL, not {base_url!r}")
    ssl_context = _transport.tls_context(verify, cert) if https else None
    if https and verify is False:
        _log.warning("TLS certificates of %s are not verified (verify=False)", base_url)
    return _transport.TransportSettings(
        base_url=base_url,
        timeout_seconds=timeout,
        connect_timeout_seconds=connect_timeout,
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        retries=retries,
        deadline_seconds=deadline if deadline is not None else timeout,
        ssl_context=ssl_context,
    )


def _env_settings() -> dict[str, Any]:
    settings: dict[str, Any] = {"base_url": os.environ.get("WARDEN_URL", DEFAULT_URL)}
    if "WARDEN_PEP_CREDENTIAL" in os.environ:
        settings["pep_credential"] = os.environ["WARDEN_PEP_CREDENTIAL"]
    if "WARDEN_TIMEOUT" in os.environ:
        settings["timeout"] = float(os.environ["WARDEN_TIMEOUT"])
    return settings


def _problem_detail(raw: _transport.RawResponse) -> str:
    try:
        body = raw.json()
    except WardenUnavailableError:
        return raw.body[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error_description") or body.get("title")
        if isinstance(detail, str):
            return detail
    return str(body)[:200]


def _problem_reason(raw: _transport.RawResponse) -> str | None:
    """The reason code of an error answer: a problem body's `reason`, or an OAuth `error`."""
    try:
        body = raw.json()
    except WardenUnavailableError:
        return None
    if not isinstance(body, dict):
        return None
    reason = body.get("reason") or body.get("error")
    return reason if isinstance(reason, str) else None


def _retry_after(raw: _transport.RawResponse) -> float | None:
    """`Retry-After` in seconds (an HTTP date is not used: Warden sends seconds)."""
    value = raw.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def _log_decision(raw: _transport.RawResponse, decision_id: str | None, allowed: bool) -> None:
    _log.debug(
        "decision %s on %s %s: %s",
        decision_id,
        raw.method,
        raw.path,
        "allow" if allowed else "deny",
    )


def _require_checks(checks: Sequence[Check]) -> None:
    if not checks:
        raise ValueError("check_many needs at least one check")


def _check_answer(raw: _transport.RawResponse) -> Decision:
    if raw.status == 200:
        decision = parse_decision(raw.json())
        _log_decision(raw, decision.decision_id, decision.allowed)
        return decision
    _token_refusal(raw)


def _checks_answer(raw: _transport.RawResponse, n_checks: int) -> list[Decision]:
    if raw.status == 200:
        decisions = parse_decisions(raw.json(), n_checks)
        for decision in decisions:
            _log_decision(raw, decision.decision_id, decision.allowed)
        return decisions
    _token_refusal(raw)


def _evaluation_answer(raw: _transport.RawResponse) -> Evaluation:
    evaluation = parse_evaluation(_pep_answer(raw))
    _log_decision(raw, evaluation.decision_id, evaluation.allowed)
    return evaluation


def _evaluations_answer(
    raw: _transport.RawResponse, n_evaluations: int, semantic: str | None
) -> list[Evaluation]:
    evaluations = parse_evaluations(_pep_answer(raw), n_evaluations, semantic)
    for evaluation in evaluations:
        _log_decision(raw, evaluation.decision_id, evaluation.allowed)
    return evaluations


def _authenticate_answer(raw: _transport.RawResponse) -> Authentication:
    if raw.status == 200:
        return parse_authentication(raw.json())
    _token_refusal(raw)


def _token_refusal(raw: _transport.RawResponse) -> NoReturn:
    """A 401 is Warden refusing the end user's token; anything else is no answer."""
    if raw.status == 401:
        body = raw.json()
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str):
            raise WardenProtocolError("Warden answered 401 without a reason code")
        detail = body.get("detail")
        # The reason code only: a detail might one day quote what the token claimed.
        _log.debug("Warden refused the bearer token on %s %s: %s", raw.method, raw.path, reason)
        raise InvalidTokenError(
            reason, detail if isinstance(detail, str) else None, raw.headers.get("www-authenticate")
        )
    _not_an_answer(raw)


def _filter_answer(
    raw: _transport.RawResponse, action: str, resource_type: str, *, end_user: bool
) -> FilterPlan:
    """A plan, or the reason there is none. With `end_user`, a 401 refused the user's token;
    otherwise it refused the PEP credential (a `WardenRequestError`, as for `evaluate`)."""
    if raw.status == 200:
        plan = parse_filter_plan(raw.json(), action, resource_type)
        _log.debug(
            "decision %s on %s %s: %s", plan.decision_id, raw.method, raw.path, plan.decision
        )
        return plan
    if raw.status == 422:
        body = raw.json()
        if isinstance(body, dict) and body.get("reason") == "filter_unsupported":
            policy = body.get("policy")
            decision_id = body.get("decision_id")
            _log.debug(
                "decision %s on %s %s: filter_unsupported (policy %s)",
                decision_id,
                raw.method,
                raw.path,
                policy,
            )
            raise FilterUnsupportedError(
                policy if isinstance(policy, str) else None, _problem_detail(raw)
            )
    if end_user:
        _token_refusal(raw)
    _not_an_answer(raw)


def _search_limits(page_size: int | None, max_results: int | None) -> None:
    if page_size is not None and not 1 <= page_size <= 1000:
        raise ValueError("page_size must be between 1 and 1000 (Warden's limit)")
    if max_results is not None and max_results < 0:
        raise ValueError("max_results must not be negative")


class _PageTokens:
    """The page tokens of one search: a token Warden sends twice would loop forever."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def next(self, token: str) -> str:
        if token in self._seen:
            raise WardenProtocolError("Warden sent a search page token it had already sent")
        self._seen.add(token)
        return token


def _pep_answer(raw: _transport.RawResponse) -> Any:
    if raw.status == 200:
        return raw.json()
    _not_an_answer(raw)


def _not_an_answer(raw: _transport.RawResponse) -> NoReturn:
    """A 4xx is Warden rejecting the request (`WardenRequestError`, retryable only for a
    429); anything else is no decision (`WardenUnavailableError`, retryable for 502-504)."""
    reason = _problem_reason(raw)
    detail = _problem_detail(raw)
    retry_after = _retry_after(raw)
    # Only a JSON body's reason and detail are logged: an HTML error page from a proxy
    # could quote anything, headers included (the exception still carries it).
    if raw.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
        logged = f"reason {reason}: {detail}" if reason else detail
    else:
        logged = f"a {raw.headers.get('content-type', 'untyped')} body of {len(raw.body)} bytes"
    if 400 <= raw.status < 500:
        _log.warning(
            "Warden rejected %s %s with HTTP %d: %s", raw.method, raw.path, raw.status, logged
        )
        raise WardenRequestError(raw.status, detail, reason=reason, retry_after=retry_after)
    _log.warning("Warden answered %s %s with HTTP %d: %s", raw.method, raw.path, raw.status, logged)
    raise WardenUnavailableError(
        f"Warden answered HTTP {raw.status}: {detail}",
        status=raw.status,
        reason=reason,
        detail=detail,
        retry_after=retry_after,
    )


def _readiness(raw: _transport.RawResponse) -> dict[str, Any]:
    if raw.status not in (200, 503):
        raise WardenUnavailableError(
            f"Warden answered /readyz with HTTP {raw.status}", status=raw.status
        )
    body = raw.json()
    if not isinstance(body, dict):
        raise WardenProtocolError("the /readyz answer is not a JSON object")
    return body


def _document(raw: _transport.RawResponse) -> dict[str, Any]:
    """A JSON object answer of a `GET` (Warden's JWKS, its OpenID configuration)."""
    body = _pep_answer(raw)
    if not isinstance(body, dict):
        raise WardenProtocolError(f"the answer of {raw.path} is not a JSON object")
    return body


class _Base:
    def __init__(self, pep_credential: str | None) -> None:
        self._pep_headers = (
            {"authorization": f"Bearer {pep_credential}"} if pep_credential is not None else {}
        )

    @staticmethod
    def _token_headers(token: str) -> dict[str, str]:
        if not token or any(c in token for c in "\r\n"):
            # Warden would refuse it too; never send a header that could split.
            raise InvalidTokenError("token_malformed", "empty or multi-line token", None)
        return {"authorization": f"Bearer {token}"}


class WardenClient(_Base):
    """A blocking client of one Warden deployment.

    `timeout` bounds each wait for Warden (`connect_timeout` the connection), `deadline` a
    whole call, retries included (default: `timeout`). `retries` is how many more attempts
    a call makes after a refused or reset connection (default 2, 0 for none), with a short
    jittered backoff and never past the deadline; an answer (a 503 too), a timeout or a TLS
    failure is never retried. Over HTTPS, `verify` is whom to trust (True: the system's
    store, or `SSL_CERT_FILE` when set; a CA bundle path; an `ssl.SSLContext`; False: no
    verification, never in production) and `cert` the client certificate to present (a PEM
    file with its key, or `(cert_file, key_file)`), for a Warden that requires mTLS.
    `verify` and `cert` do not apply with a `transport` of your own.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        pep_credential: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        max_connections: int = 100,
        transport: _transport.SyncHttpTransport | None = None,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
        verify: _transport.Verify = True,
        cert: _transport.ClientCert | None = None,
    ) -> None:
        super().__init__(pep_credential)
        settings = _settings(
            base_url,
            timeout,
            connect_timeout,
            max_connections,
            retries=retries,
            deadline=deadline,
            verify=verify,
            cert=cert,
        )
        self._http = _transport.SyncTransport(settings, transport)

    @classmethod
    def from_env(cls) -> WardenClient:
        """Configured by `WARDEN_URL`, `WARDEN_PEP_CREDENTIAL` and `WARDEN_TIMEOUT`."""
        return cls(**_env_settings())

    def check(
        self,
        token: str,
        action: str,
        resource_type: str,
        resource_id: str,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Verify `token` and decide whether its principal may do `action` on the resource.

        Raises `InvalidTokenError` when Warden refuses the token.
        """
        body = check_body(action, Entity(resource_type, resource_id, properties), context)
        raw = self._http.post_json(CHECK_PATH, body, self._token_headers(token), idempotent=True)
        return _check_answer(raw)

    def check_many(self, token: str, checks: Sequence[Check]) -> list[Decision]:
        """`check` for several resources at once: one `POST /v1/checks`, one token check.

        Returns one `Decision` per item of `checks`, in order; an answer with another number
        of results is a `WardenProtocolError`. Raises `InvalidTokenError` when Warden refuses
        the token, and `WardenRequestError` for a batch larger than Warden's
        `server.max_batch_size`, and `ValueError` for no checks at all (Warden refuses an
        empty batch: it would vouch for the token without deciding anything).
        """
        _require_checks(checks)
        raw = self._http.post_json(
            CHECKS_PATH, checks_body(checks), self._token_headers(token), idempotent=True
        )
        return _checks_answer(raw, len(checks))

    def authenticate(self, token: str) -> Authentication:
        """Verify `token` and return who it is, without a decision (none is logged).

        Raises `InvalidTokenError` when Warden refuses the token (e.g. `token_revoked`).
        """
        return _authenticate_answer(
            self._http.post_empty(AUTHENTICATE_PATH, self._token_headers(token), idempotent=True)
        )

    def evaluate(
        self,
        subject: Entity,
        action: str,
        resource: Entity,
        context: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """One AuthZEN evaluation, authenticated with the PEP credential."""
        body = EvaluationRequest(subject, action, resource, context).to_json()
        return _evaluation_answer(
            self._http.post_json(EVALUATION_PATH, body, self._pep_headers, idempotent=True)
        )

    def evaluate_many(
        self,
        evaluations: Sequence[EvaluationRequest],
        *,
        subject: Entity | None = None,
        action: str | None = None,
        resource: Entity | None = None,
        context: Mapping[str, Any] | None = None,
        semantic: str | None = None,
    ) -> list[Evaluation]:
        """A batch of AuthZEN evaluations; the keyword arguments are the batch defaults.

        `semantic` is `execute_all` (Warden's default), `deny_on_first_deny` or
        `permit_on_first_permit`. With the last two the answer may be shorter than the batch,
        but then it ends with the deny (or the permit) that stopped it; any other count is a
        `WardenProtocolError`.
        """
        body = evaluations_body(
            evaluations,
            subject=subject,
            action=action,
            resource=resource,
            context=context,
            semantic=semantic,
        )
        raw = self._http.post_json(EVALUATIONS_PATH, body, self._pep_headers, idempotent=True)
        return _evaluations_answer(raw, len(evaluations), semantic)

    def filter(
        self,
        token: str,
        action: str,
        resource_type: str,
        context: Mapping[str, Any] | None = None,
    ) -> FilterPlan:
        """Verify `token` and ask which resources of `resource_type` its principal may do
        `action` on: a data-filter plan (`warden.sqlalchemy` renders it as a query).

        Raises `InvalidTokenError` when Warden refuses the token, `FilterUnsupportedError`
        when a policy cannot be written as a filter, and `WardenRequestError` for an unknown
        action or resource type.
        """
        body = filter_body(action, resource_type, context)
        raw = self._http.post_json(FILTER_PATH, body, self._token_headers(token), idempotent=True)
        return _filter_answer(raw, action, resource_type, end_user=True)

    def filter_for(
        self,
        subject: Entity,
        action: str,
        resource_type: str,
        context: Mapping[str, Any] | None = None,
    ) -> FilterPlan:
        """`filter` for a named `subject`, authenticated with the PEP credential (a 401 for the
        credential is a `WardenRequestError`)."""
        body = filter_body(action, resource_type, context, subject)
        raw = self._http.post_json(FILTER_PATH, body, self._pep_headers, idempotent=True)
        return _filter_answer(raw, action, resource_type, end_user=False)

    def search_resources(
        self,
        subject: Entity,
        action: str,
        resource_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_results: int | None = None,
    ) -> Iterator[Entity]:
        """The known resources of `resource_type` on which `subject` may do `action` (AuthZEN
        resource search, PEP credential), page after page, at most `max_results` of them."""
        body = resource_search_body(subject, action, resource_type, context)
        return self._search(SEARCH_RESOURCE_PATH, body, resource_type, page_size, max_results)

    def search_subjects(
        self,
        subject_type: str,
        action: str,
        resource: Entity,
        *,
        context: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_results: int | None = None,
    ) -> Iterator[Entity]:
        """The known subjects of `subject_type` that may do `action` on `resource` (AuthZEN
        subject search, PEP credential), page after page, at most `max_results` of them."""
        body = subject_search_body(subject_type, action, resource, context)
        return self._search(SEARCH_SUBJECT_PATH, body, subject_type, page_size, max_results)

    def search_actions(
        self,
        subject: Entity,
        resource: Entity,
        *,
        context: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_results: int | None = None,
    ) -> Iterator[str]:
        """The names of the actions `subject` may do on `resource` (AuthZEN action search, PEP
        credential), page after page, at most `max_results` of them."""
        body = action_search_body(subject, resource, context)
        return self._search(SEARCH_ACTION_PATH, body, None, page_size, max_results)

    def _search(
        self,
        path: str,
        body: dict[str, Any],
        entity_type: str | None,
        page_size: int | None,
        max_results: int | None,
    ) -> Iterator[Any]:
        _search_limits(page_size, max_results)
        return self._pages(path, body, entity_type, page_size, max_results)

    def _pages(
        self,
        path: str,
        body: dict[str, Any],
        entity_type: str | None,
        page_size: int | None,
        max_results: int | None,
    ) -> Iterator[Any]:
        tokens = _PageTokens()
        token: str | None = None
        n_results = 0
        while max_results is None or n_results < max_results:
            raw = self._http.post_json(
                path, search_page_body(body, page_size, token), self._pep_headers, idempotent=True
            )
            page = parse_search_page(_pep_answer(raw), entity_type)
            for result in page.results[: None if max_results is None else max_results - n_results]:
                n_results += 1
                yield result
            if not page.next_token:
                return
            token = tokens.next(page.next_token)

    def readiness(self) -> dict[str, Any]:
        """The `/readyz` document (its `checks.policy.revision` names the loaded policy)."""
        return _readiness(self._http.get(READY_PATH))

    def jwks(self) -> dict[str, Any]:
        """Warden's own signing keys (`GET /.well-known/jwks.json`): what verifies its
        service-account tokens and the context tokens a gateway passes on (`warden.context_token`).

        Warden without `[tokens]` has none: a `WardenRequestError` (404).
        """
        return _document(self._http.get(JWKS_PATH))

    def openid_configuration(self) -> dict[str, Any]:
        """Warden's issuer metadata (`GET /.well-known/openid-configuration`); its `issuer` is
        the `iss` of Warden's tokens. Without `[tokens]`: a `WardenRequestError` (404)."""
        return _document(self._http.get(OPENID_CONFIGURATION_PATH))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncWardenClient(_Base):
    """A non-blocking client of one Warden deployment (for asyncio and FastAPI).

    The same options as `WardenClient` (`timeout`, `deadline`, `retries`, `verify`, `cert`).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        pep_credential: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        max_connections: int = 100,
        transport: _transport.AsyncHttpTransport | None = None,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
        verify: _transport.Verify = True,
        cert: _transport.ClientCert | None = None,
    ) -> None:
        super().__init__(pep_credential)
        settings = _settings(
            base_url,
            timeout,
            connect_timeout,
            max_connections,
            retries=retries,
            deadline=deadline,
            verify=verify,
            cert=cert,
        )
        self._http = _transport.AsyncTransport(settings, transport)

    @classmethod
    def from_env(cls) -> AsyncWardenClient:
        """Configured by `WARDEN_URL`, `WARDEN_PEP_CREDENTIAL` and `WARDEN_TIMEOUT`."""
        return cls(**_env_settings())

    async def check(
        self,
        token: str,
        action: str,
        resource_type: str,
        resource_id: str,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Verify `token` and decide whether its principal may do `action` on the resource.

        Raises `InvalidTokenError` when Warden refuses the token.
        """
        body = check_body(action, Entity(resource_type, resource_id, properties), context)
        raw = await self._http.post_json(
            CHECK_PATH, body, self._token_headers(token), idempotent=True
        )
        return _check_answer(raw)

    async def check_many(self, token: str, checks: Sequence[Check]) -> list[Decision]:
        """`check` for several resources at once; see `WardenClient.check_many`."""
        _require_checks(checks)
        body = checks_body(checks)
        raw = await self._http.post_json(
            CHECKS_PATH, body, self._token_headers(token), idempotent=True
        )
        return _checks_answer(raw, len(checks))

    async def authenticate(self, token: str) -> Authentication:
        """Verify `token` and return who it is, without a decision (none is logged).

        Raises `InvalidTokenError` when Warden refuses the token (e.g. `token_revoked`).
        """
        raw = await self._http.post_empty(
            AUTHENTICATE_PATH, self._token_headers(token), idempotent=True
        )
        return _authenticate_answer(raw)

    async def evaluate(
        self,
        subject: Entity,
        action: str,
        resource: Entity,
        context: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """One AuthZEN evaluation, authenticated with the PEP credential."""
        body = EvaluationRequest(subject, action, resource, context).to_json()
        raw = await self._http.post_json(EVALUATION_PATH, body, self._pep_headers, idempotent=True)
        return _evaluation_answer(raw)

    async def evaluate_many(
        self,
        evaluations: Sequence[EvaluationRequest],
        *,
        subject: Entity | None = None,
        action: str | None = None,
        resource: Entity | None = None,
        context: Mapping[str, Any] | None = None,
        semantic: str | None = None,
    ) -> list[Evaluation]:
        """A batch of AuthZEN evaluations; see `WardenClient.evaluate_many`."""
        body = evaluations_body(
            evaluations,
            subject=subject,
            action=action,
            resource=resource,
            context=context,
            semantic=semantic,
        )
        raw = await self._http.post_json(EVALUATIONS_PATH, body, self._pep_headers, idempotent=True)
        return _evaluations_answer(raw, len(evaluations), semantic)

    async def filter(
        self,
        token: str,
        action: str,
        resource_type: str,
        context: Mapping[str, Any] | None = None,
    ) -> FilterPlan:
        """A data-filter plan for the token's principal; see `WardenClient.filter`."""
        body = filter_body(action, resource_type, context)
        raw = await self._http.post_json(
            FILTER_PATH, body, self._token_headers(token), idempotent=True
        )
        return _filter_answer(raw, action, resource_type, end_user=True)

    async def filter_for(
        self,
        subject: Entity,
        action: str,
        resource_type: str,
        context: Mapping[str, Any] | None = None,
    ) -> FilterPlan:
        """A data-filter plan for `subject`, as a PEP; see `WardenClient.filter_for`."""
        body = filter_body(action, resource_type, context, subject)
        raw = await self._http.post_json(FILTER_PATH, body, self._pep_headers, idempotent=True)
        return _filter_answer(raw, action, resource_type, end_user=False)

    def search_resources(
        self,
        subject: Entity,
        action: str,
        resource_type: str,
        *,
        context: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_results: int | None = None,
    ) -> AsyncIterator[Entity]:
        """`async for` over an AuthZEN resource search; see `WardenClient.search_resources`."""
        body = resource_search_body(subject, action, resource_type, context)
        return self._search(SEARCH_RESOURCE_PATH, body, resource_type, page_size, max_results)

    def search_subjects(
        self,
        subject_type: str,
        action: str,
        resource: Entity,
        *,
        context: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_results: int | None = None,
    ) -> AsyncIterator[Entity]:
        """`async for` over an AuthZEN subject search; see `WardenClient.search_subjects`."""
        body = subject_search_body(subject_type, action, resource, context)
        return self._search(SEARCH_SUBJECT_PATH, body, subject_type, page_size, max_results)

    def search_actions(
        self,
        subject: Entity,
        resource: Entity,
        *,
        context: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_results: int | None = None,
    ) -> AsyncIterator[str]:
        """`async for` over an AuthZEN action search; see `WardenClient.search_actions`."""
        body = action_search_body(subject, resource, context)
        return self._search(SEARCH_ACTION_PATH, body, None, page_size, max_results)

    def _search(
        self,
        path: str,
        body: dict[str, Any],
        entity_type: str | None,
        page_size: int | None,
        max_results: int | None,
    ) -> AsyncIterator[Any]:
        _search_limits(page_size, max_results)
        return self._pages(path, body, entity_type, page_size, max_results)

    async def _pages(
        self,
        path: str,
        body: dict[str, Any],
        entity_type: str | None,
        page_size: int | None,
        max_results: int | None,
    ) -> AsyncIterator[Any]:
        tokens = _PageTokens()
        token: str | None = None
        n_results = 0
        while max_results is None or n_results < max_results:
            raw = await self._http.post_json(
                path, search_page_body(body, page_size, token), self._pep_headers, idempotent=True
            )
            page = parse_search_page(_pep_answer(raw), entity_type)
            for result in page.results[: None if max_results is None else max_results - n_results]:
                n_results += 1
                yield result
            if not page.next_token:
                return
            token = tokens.next(page.next_token)

    async def readiness(self) -> dict[str, Any]:
        """The `/readyz` document (its `checks.policy.revision` names the loaded policy)."""
        return _readiness(await self._http.get(READY_PATH))

    async def jwks(self) -> dict[str, Any]:
        """Warden's own signing keys; see `WardenClient.jwks`."""
        return _document(await self._http.get(JWKS_PATH))

    async def openid_configuration(self) -> dict[str, Any]:
        """Warden's issuer metadata; see `WardenClient.openid_configuration`."""
        return _document(await self._http.get(OPENID_CONFIGURATION_PATH))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
