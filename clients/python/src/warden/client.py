"""`WardenClient` (blocking) and `AsyncWardenClient`: the same API, the same answers.

Both hold one pooled connection to Warden for their lifetime; create one per process and
close it on shutdown (`with` / `async with` do that). Every method either returns an answer
(a decision, an identity for `authenticate`, a data-filter plan for `filter`, the results of
a search) or raises: an unreachable Warden, a timeout, a 5xx or a garbled answer is
`WardenUnavailableError`, never an allow.

The searches (`search_resources`, `search_subjects`, `search_actions`) are iterators that ask
for the next page only when the previous one is used up; their errors are raised while
iterating.
"""

from __future__ import annotations

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


def _settings(
    base_url: str,
    timeout: float,
    connect_timeout: float,
    max_connections: int,
) -> _transport.TransportSettings:
    if timeout <= 0 or connect_timeout <= 0:
        raise ValueError("timeouts must be positive: a request without one can hang forever")
    return _transport.TransportSettings(
        base_url=base_url.rstrip("/"),
        timeout_seconds=timeout,
        connect_timeout_seconds=connect_timeout,
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
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
        detail = body.get("detail") or body.get("title")
        if isinstance(detail, str):
            return detail
    return str(body)[:200]


def _require_checks(checks: Sequence[Check]) -> None:
    if not checks:
        raise ValueError("check_many needs at least one check")


def _check_answer(raw: _transport.RawResponse) -> Decision:
    if raw.status == 200:
        return parse_decision(raw.json())
    _token_refusal(raw)


def _checks_answer(raw: _transport.RawResponse, n_checks: int) -> list[Decision]:
    if raw.status == 200:
        return parse_decisions(raw.json(), n_checks)
    _token_refusal(raw)


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
        return parse_filter_plan(raw.json(), action, resource_type)
    if raw.status == 422:
        body = raw.json()
        if isinstance(body, dict) and body.get("reason") == "filter_unsupported":
            policy = body.get("policy")
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
    if 400 <= raw.status < 500:
        raise WardenRequestError(raw.status, _problem_detail(raw))
    raise WardenUnavailableError(f"Warden answered HTTP {raw.status}: {_problem_detail(raw)}")


def _readiness(raw: _transport.RawResponse) -> dict[str, Any]:
    if raw.status not in (200, 503):
        raise WardenUnavailableError(f"Warden answered /readyz with HTTP {raw.status}")
    body = raw.json()
    if not isinstance(body, dict):
        raise WardenProtocolError("the /readyz answer is not a JSON object")
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
    """A blocking client of one Warden deployment."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        pep_credential: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        max_connections: int = 100,
        transport: _transport.SyncHttpTransport | None = None,
    ) -> None:
        super().__init__(pep_credential)
        self._http = _transport.SyncTransport(
            _settings(base_url, timeout, connect_timeout, max_connections), transport
        )

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
        return _check_answer(self._http.post_json(CHECK_PATH, body, self._token_headers(token)))

    def check_many(self, token: str, checks: Sequence[Check]) -> list[Decision]:
        """`check` for several resources at once: one `POST /v1/checks`, one token check.

        Returns one `Decision` per item of `checks`, in order; an answer with another number
        of results is a `WardenProtocolError`. Raises `InvalidTokenError` when Warden refuses
        the token, and `WardenRequestError` for a batch larger than Warden's
        `server.max_batch_size`, and `ValueError` for no checks at all (Warden refuses an
        empty batch: it would vouch for the token without deciding anything).
        """
        _require_checks(checks)
        raw = self._http.post_json(CHECKS_PATH, checks_body(checks), self._token_headers(token))
        return _checks_answer(raw, len(checks))

    def authenticate(self, token: str) -> Authentication:
        """Verify `token` and return who it is, without a decision (none is logged).

        Raises `InvalidTokenError` when Warden refuses the token (e.g. `token_revoked`).
        """
        return _authenticate_answer(
            self._http.post_empty(AUTHENTICATE_PATH, self._token_headers(token))
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
        return parse_evaluation(
            _pep_answer(self._http.post_json(EVALUATION_PATH, body, self._pep_headers))
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
        raw = self._http.post_json(EVALUATIONS_PATH, body, self._pep_headers)
        return parse_evaluations(_pep_answer(raw), len(evaluations), semantic)

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
        raw = self._http.post_json(FILTER_PATH, body, self._token_headers(token))
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
        raw = self._http.post_json(FILTER_PATH, body, self._pep_headers)
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
                path, search_page_body(body, page_size, token), self._pep_headers
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
    """A non-blocking client of one Warden deployment (for asyncio and FastAPI)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        pep_credential: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        max_connections: int = 100,
        transport: _transport.AsyncHttpTransport | None = None,
    ) -> None:
        super().__init__(pep_credential)
        self._http = _transport.AsyncTransport(
            _settings(base_url, timeout, connect_timeout, max_connections), transport
        )

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
        raw = await self._http.post_json(CHECK_PATH, body, self._token_headers(token))
        return _check_answer(raw)

    async def check_many(self, token: str, checks: Sequence[Check]) -> list[Decision]:
        """`check` for several resources at once; see `WardenClient.check_many`."""
        _require_checks(checks)
        body = checks_body(checks)
        raw = await self._http.post_json(CHECKS_PATH, body, self._token_headers(token))
        return _checks_answer(raw, len(checks))

    async def authenticate(self, token: str) -> Authentication:
        """Verify `token` and return who it is, without a decision (none is logged).

        Raises `InvalidTokenError` when Warden refuses the token (e.g. `token_revoked`).
        """
        raw = await self._http.post_empty(AUTHENTICATE_PATH, self._token_headers(token))
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
        raw = await self._http.post_json(EVALUATION_PATH, body, self._pep_headers)
        return parse_evaluation(_pep_answer(raw))

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
        raw = await self._http.post_json(EVALUATIONS_PATH, body, self._pep_headers)
        return parse_evaluations(_pep_answer(raw), len(evaluations), semantic)

    async def filter(
        self,
        token: str,
        action: str,
        resource_type: str,
        context: Mapping[str, Any] | None = None,
    ) -> FilterPlan:
        """A data-filter plan for the token's principal; see `WardenClient.filter`."""
        body = filter_body(action, resource_type, context)
        raw = await self._http.post_json(FILTER_PATH, body, self._token_headers(token))
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
        raw = await self._http.post_json(FILTER_PATH, body, self._pep_headers)
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
                path, search_page_body(body, page_size, token), self._pep_headers
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
