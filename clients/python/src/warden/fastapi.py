"""FastAPI integration: authenticate and authorize each route through Warden.

    warden = Warden(AsyncWardenClient.from_env())
    warden.install(app)

    @app.get("/tenants/{tenant}/documents/{doc_id}")
    async def read(auth: Authorized = Depends(warden.authorize(
            "read", "Document", id_template="{tenant}/{doc_id}"))): ...

What each outcome becomes:

- no bearer token: 401 with `WWW-Authenticate: Bearer` (Warden is not asked), unless a
  gateway's context token stands in for the check (see below);
- a token Warden refuses: 401 with `WWW-Authenticate: Bearer error="invalid_token",
  error_description="<reason code>"`;
- a deny: 403 with the reason code and the decision id;
- Warden unreachable, timing out, failing or garbled: 503. Never an allow.

Every decision's id is echoed in the `X-Decision-Id` response header (and in 403 bodies),
so an application log line can be joined with Warden's decision log.

A list route lets the database filter its rows (extra `sqlalchemy`):

    @app.get("/documents")
    def list_documents(
        query: Select = Depends(warden.filter(Document, "read", field_map)), ...): ...

`query` is `select(Document)` already restricted, by one `POST /v1/filter` for the request's
bearer token, to the rows the token's principal may `read` (see `warden.sqlalchemy`; the
plan's decision id is in `X-Decision-Id`). A plan Warden cannot make (a policy that cannot be
written as a filter: 422 `filter_unsupported`) or that names a field the `FieldMap` does not
map is a 503 whose problem body has `"reason": "filter_unsupported"` (or `"filter_unmapped"`)
and no `Retry-After`: nothing is listed, the cause (the policy, the field) goes to the log
(logger `warden.fastapi`), and retrying does not help until the policy or the mapping
changes. Without a query to filter, `await warden.filter_allowed(request, token, "read", rows,
to_entity)` decides rows already loaded: one `POST /v1/checks` per batch, only the allowed
ones are kept.

Behind a gateway that asks Warden first (`/v1/forward-auth`, Envoy `ext_authz`; see
`docs/gateways.md`), the same check would be made twice. With `Warden(...,
context_audience="docs-app")` (extra `gateway`), the gateway's `X-Warden-Context` (a token
Warden signed on allow, for this audience, for seconds; see `warden.context_token`) stands in
for an `authorize(...)` check when it verifies and allowed exactly that action on that
resource id, and the check has no other input (no `context`, no loaded `properties`: with them
Warden could decide otherwise than at the gateway). The decision then has the gateway's
decision id (in `X-Decision-Id` and `decisions_of`), reason `permitted`, the token's principal
and `policy_revision` `"gateway"`, and Warden is not called; no bearer token is needed for it.
A missing, refused (forged, expired, another audience's, logged at WARNING on
`warden.fastapi`, never the token) or non-matching context token changes nothing: the usual
check with the bearer token follows, and without a bearer token that is 401 `token_missing`.
The gateway must set the header and drop a client's own (`docs/gateways.md`); a token that
verifies is Warden's allow all the same, but only for its audience, action, resource and
lifetime.

A route that hands work to a background job gives the job the user's narrowed authority,
not a credential of its own: `Depends(warden.job_identity(exchanger))` exchanges the request's
bearer token at Warden (RFC 8693) for a `warden.jobs.JobIdentity` to enqueue the job with; the
worker checks each action with it as the user (see `warden.jobs`).

Authentication is the first check's job: `/v1/check` verifies the token and decides in one
round trip, so `authorize(...)` needs no separate authentication call. `principal` (for
routes that need only "who is this?") reuses a decision (or plan) already made for the
request, and otherwise calls `POST /v1/authenticate`, which verifies the token (revocations
included) without making a decision, so nothing reaches Warden's decision log and no
`X-Decision-Id` is set. A refused token and an unavailable Warden are the same 401 and 503
as above.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute, APIRouter
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import JSONResponse

from warden.client import AsyncWardenClient
from warden.context_token import (
    CONTEXT_HEADER,
    ContextClaims,
    ContextTokenVerifier,
    check_settings,
)
from warden.errors import (
    ContextTokenError,
    FilterMappingError,
    FilterUnsupportedError,
    InvalidTokenError,
    TokenRequestError,
    WardenError,
)
from warden.jobs import AsyncTokenExchanger, JobIdentity
from warden.models import Check, Decision, Entity, FilterPlan, Principal

if TYPE_CHECKING:
    from sqlalchemy import Select

    from warden.sqlalchemy import FieldMap

T = TypeVar("T")

PROBLEM_BASE = "https://warden.dev/problems/"
# Warden's default `server.max_batch_size`: `filter_allowed` sends at most this many checks
# in one `POST /v1/checks`.
DEFAULT_BATCH_SIZE = 100
_STATE_DECISIONS = "warden_decisions"
_STATE_PLANS = "warden_filter_plans"
_STATE_CONTEXT = "warden_context_token"
GATEWAY_POLICY_REVISION = "gateway"
"""The `policy_revision` of a decision taken from a gateway's context token: Warden decided at
the gateway, and the token does not say under which revision."""
_log = logging.getLogger(__name__)
_MARKER = "__warden_dependency__"


@dataclass(frozen=True, slots=True)
class Probe:
    """Deprecated and unused: kept only so that `Warden(probe=...)` still constructs.

    `principal` used to ask this decision (and ignore its outcome) when no check had run for
    the request, which put a deny in Warden's decision log for every such request. It now
    calls `POST /v1/authenticate` instead, which makes no decision. Passing `probe=` to
    `Warden` emits a `DeprecationWarning`; the argument will be removed.
    """

    action: str = "list"
    resource_type: str = "Tenant"
    resource_id: str = "warden-sdk:authenticate"


@dataclass(frozen=True, slots=True)
class LoadedResource(Generic[T]):
    """What a loader returns: the resource's Warden id, its properties, and the object.

    `value=None` means "not found": the request is still decided (so a resource of another
    tenant is a 403, never a revealing 404), and an allowed request then becomes 404.
    `properties` are used by Warden only for entities its data does not know.
    """

    id: str
    value: T | None
    properties: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Authorized(Generic[T]):
    """An allowed request: Warden's decision, and the loaded object when there is a loader."""

    decision: Decision
    resource: T | None = None

    @property
    def principal(self) -> Principal:
        return self.decision.principal


class WardenHTTPException(HTTPException):
    """An HTTP error with an RFC 9457 problem body; `Warden.install` renders it as such."""

    def __init__(
        self,
        status_code: int,
        problem_type: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.problem: dict[str, Any] = {
            "type": PROBLEM_BASE + problem_type,
            "title": title,
            "status": status_code,
            "detail": detail,
            **extra,
        }
        super().__init__(status_code=status_code, detail=self.problem, headers=headers)


async def _problem_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WardenHTTPException)
    return JSONResponse(
        exc.problem,
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/problem+json",
    )


ContextSource = Mapping[str, Any] | Callable[[Request], Mapping[str, Any] | None] | None


@dataclass(frozen=True, slots=True)
class _Credentials:
    """What a request brought: its bearer token and the gateway's context token (each may be
    missing, not both). Neither is verified yet."""

    token: str | None
    context_token: str | None


class Warden:
    """FastAPI dependencies backed by one `AsyncWardenClient`.

    The client may be given later with `bind` (e.g. in the app's lifespan).
    """

    def __init__(
        self,
        client: AsyncWardenClient | None = None,
        *,
        decision_header: str = "X-Decision-Id",
        realm: str | None = None,
        probe: Probe | None = None,
        context_audience: str | None = None,
        context_issuer: str | None = None,
    ) -> None:
        """`context_audience` is this application's name as a gateway's upstream
        (`[context_token] audience`, or the route's `audience`): set, a check with no other
        input is taken from the gateway's `X-Warden-Context` when it verifies and covers it
        (see the module doc). `context_issuer` is Warden's `[tokens] issuer` (default: read
        from Warden once). `probe` is deprecated and ignored (see `Probe`)."""
        if probe is not None:
            warnings.warn(
                "Warden(probe=...) is deprecated and ignored: warden.principal now calls "
                "POST /v1/authenticate, which makes no decision",
                DeprecationWarning,
                stacklevel=2,
            )
        if context_audience is not None:
            check_settings(context_audience, context_issuer, 5.0)
        elif context_issuer is not None:
            raise ValueError("context_issuer needs context_audience")
        self._client = client
        self.context_audience = context_audience
        self.context_issuer = context_issuer
        self._context_verifier: ContextTokenVerifier | None = None
        self.decision_header = decision_header
        self.realm = realm
        self.probe = probe or Probe()
        self.bearer = HTTPBearer(
            auto_error=False,
            scheme_name="WardenBearer",
            description="An end-user access token; Warden verifies it on every request.",
        )
        self.token = self._token_dependency()
        self.principal = self._principal_dependency()

    def bind(self, client: AsyncWardenClient) -> None:
        """Use `client` from now on."""
        self._client = client
        self._context_verifier = None

    @property
    def context_verifier(self) -> ContextTokenVerifier | None:
        """The verifier of gateway context tokens (None without `context_audience`), made on
        first use from the bound client; it caches Warden's keys."""
        if self.context_audience is None:
            return None
        if self._context_verifier is None:
            self._context_verifier = ContextTokenVerifier(
                self.client, self.context_audience, issuer=self.context_issuer
            )
        return self._context_verifier

    @property
    def client(self) -> AsyncWardenClient:
        if self._client is None:
            raise _unavailable("no Warden client is configured")
        return self._client

    def install(self, app: FastAPI) -> None:
        """Render the SDK's errors as `application/problem+json`."""
        app.add_exception_handler(WardenHTTPException, _problem_response)

    # -- dependencies -------------------------------------------------------------------

    def _token_missing(self) -> WardenHTTPException:
        challenge = "Bearer" + (f' realm="{self.realm}"' if self.realm else "")
        return WardenHTTPException(
            401,
            "invalid-token",
            "Unauthorized",
            "a bearer token is required",
            headers={"WWW-Authenticate": challenge},
            reason="token_missing",
        )

    def _token_dependency(self) -> Callable[..., Awaitable[str]]:
        bearer = self.bearer

        async def warden_bearer_token(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        ) -> str:
            if credentials is None or not credentials.credentials:
                raise self._token_missing()
            return credentials.credentials

        return warden_bearer_token

    def _credentials_dependency(self) -> Callable[..., Awaitable[_Credentials]]:
        """The bearer token and, with `context_audience`, the gateway's context token: a
        request with neither is refused here (401 `token_missing`), before any loader runs."""
        bearer = self.bearer

        async def warden_credentials(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        ) -> _Credentials:
            token = credentials.credentials if credentials is not None else None
            context_tokens = (
                [value for value in request.headers.getlist(CONTEXT_HEADER) if value.strip()]
                if self.context_audience
                else []
            )
            if not token and not context_tokens:
                raise self._token_missing()
            # Sent twice, the header is refused when examined (see `_verified_context`).
            context_token = ",".join(context_tokens) if context_tokens else None
            return _Credentials(token or None, context_token)

        return warden_credentials

    def _principal_dependency(self) -> Callable[..., Awaitable[Principal]]:
        bearer = self.bearer

        async def warden_principal(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        ) -> Principal:
            earlier: list[Decision] = getattr(request.state, _STATE_DECISIONS, [])
            if earlier:
                return earlier[-1].principal
            plans: list[FilterPlan] = getattr(request.state, _STATE_PLANS, [])
            if plans:
                return plans[-1].principal
            if credentials is None or not credentials.credentials:
                raise self._token_missing()
            token = credentials.credentials
            # Identity only: no decision is made, so none is logged and no decision id is set.
            try:
                authentication = await self.client.authenticate(token)
            except InvalidTokenError as refused:
                raise _refused(refused) from None
            except WardenError as failure:
                raise _unavailable(str(failure)) from failure
            return authentication.principal

        setattr(warden_principal, _MARKER, True)
        return warden_principal

    def job_identity(
        self,
        exchanger: AsyncTokenExchanger | Callable[[Request], AsyncTokenExchanger],
        *,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
    ) -> Callable[..., Awaitable[JobIdentity]]:
        """A dependency giving a `JobIdentity` for the request's user, to enqueue a job with
        (`warden.jobs`): the request's bearer token exchanged at Warden (RFC 8693) by
        `exchanger`'s service account, narrowed to `scope` when given.

        `exchanger` is an `AsyncTokenExchanger`, or a function of the request returning one
        (e.g. `lambda request: request.app.state.exchanger`, made in the app's lifespan). It
        authorizes nothing: put it beside the route's `authorize(...)`. No bearer token, or
        one Warden refuses to exchange (`invalid_request`), is a 401 (`token_missing`,
        `token_exchange_refused`); an exchange that cannot be made otherwise (Warden
        unavailable, or `invalid_scope`, `invalid_target`, `unauthorized_client`,
        `invalid_client`: the account or the code has to change, logged) a 503. The user's
        own token is not in the identity.
        """
        token_dependency = self.token

        async def warden_job_identity(
            request: Request, token: str = Depends(token_dependency)
        ) -> JobIdentity:
            chosen = exchanger if isinstance(exchanger, AsyncTokenExchanger) else exchanger(request)
            try:
                return await chosen.exchange(token, scope=scope, audience=audience)
            except TokenRequestError as refusal:
                if refusal.error == "invalid_request":
                    raise _refused(
                        InvalidTokenError("token_exchange_refused", refusal.description, None)
                    ) from None
                _log.error("a job identity cannot be made for %s: %s", request.url.path, refusal)
                raise _unavailable(str(refusal)) from None
            except WardenError as failure:
                raise _unavailable(str(failure)) from failure

        return warden_job_identity

    def authorize(
        self,
        action: str,
        resource_type: str,
        *,
        id_param: str | None = None,
        id_template: str | None = None,
        load: Callable[..., Any] | None = None,
        context: ContextSource = None,
    ) -> Callable[..., Awaitable[Authorized[Any]]]:
        """A dependency that lets the request through only if Warden allows `action`.

        The resource id comes from exactly one of: `id_param` (a path parameter),
        `id_template` (path parameters formatted in, e.g. `"{tenant}/{doc_id}"`), or `load`
        (a dependency, itself free to use `Depends`, returning a `LoadedResource`).

        With `context_audience` (see `Warden`), a gateway's verified context token that
        allowed exactly this action on this resource id stands in for the check, when the
        check has no other input: no `context` (or an empty one) and no loaded `properties`
        (or empty ones). Otherwise, or when the token is missing or refused, Warden is asked
        with the bearer token as usual.
        """
        if sum(x is not None for x in (id_param, id_template, load)) != 1:
            raise ValueError("give exactly one of id_param, id_template or load")
        credentials_dependency = self._credentials_dependency()

        def resource_id_from_path(request: Request) -> str:
            params = request.path_params
            try:
                if id_param is not None:
                    return str(params[id_param])
                assert id_template is not None
                for name, value in params.items():
                    if "/" in str(value):
                        raise WardenHTTPException(
                            400, "bad-request", "Bad Request", f"path parameter {name} has a /"
                        )
                return id_template.format_map(params)
            except KeyError as missing:
                raise RuntimeError(
                    f"route {request.url.path} has no path parameter {missing} for Warden"
                ) from None

        async def decide(
            request: Request,
            response: Response,
            credentials: _Credentials,
            resource_id: str,
            props: Any,
        ) -> Decision:
            ctx = context(request) if callable(context) else context
            decision: Decision | None = None
            if credentials.context_token is not None and not props and not ctx:
                decision = await self._gateway_decision(
                    request, response, credentials.context_token, action, resource_type, resource_id
                )
            if decision is None:
                if credentials.token is None:
                    raise self._token_missing()
                decision = await self._decide(
                    request,
                    response,
                    credentials.token,
                    action,
                    resource_type,
                    resource_id,
                    props,
                    ctx,
                )
            if not decision.allowed:
                raise WardenHTTPException(
                    403,
                    "forbidden",
                    "Forbidden",
                    f"Warden denied {action} on {resource_type}: {decision.reason}",
                    headers={self.decision_header: decision.decision_id},
                    reason=decision.reason,
                    decision_id=decision.decision_id,
                )
            return decision

        if load is None:

            async def warden_authorize_path(
                request: Request,
                response: Response,
                credentials: _Credentials = Depends(credentials_dependency),  # noqa: B008
            ) -> Authorized[Any]:
                resource_id = resource_id_from_path(request)
                return Authorized(await decide(request, response, credentials, resource_id, None))

            dependency: Callable[..., Awaitable[Authorized[Any]]] = warden_authorize_path

        else:
            loader = load

            async def warden_authorize_loaded(
                request: Request,
                response: Response,
                credentials: _Credentials = Depends(credentials_dependency),  # noqa: B008
                loaded: LoadedResource[Any] = Depends(loader),  # noqa: B008
            ) -> Authorized[Any]:
                if not isinstance(loaded, LoadedResource):
                    raise TypeError(f"the Warden loader {loader!r} did not return LoadedResource")
                decision = await decide(
                    request, response, credentials, loaded.id, loaded.properties
                )
                if loaded.value is None:
                    raise WardenHTTPException(
                        404, "not-found", "Not Found", f"no {resource_type} {loaded.id}"
                    )
                return Authorized(decision, loaded.value)

            dependency = warden_authorize_loaded

        dependency.__name__ = f"warden_authorize_{action}_{resource_type}"
        setattr(dependency, _MARKER, True)
        return dependency

    async def filter_allowed(
        self,
        request: Request,
        token: str,
        action: str,
        items: Iterable[T],
        resource: Callable[[T], Entity],
        *,
        context: Mapping[str, Any] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> list[T]:
        """The `items` on which Warden allows `action` for the token's principal, in order.

        For list routes: the route's own check (e.g. `list` on the tenant) says the caller
        may list, and this keeps only the rows the caller may also `read`, so a list never
        shows what a GET of the item would refuse. `resource` gives an item's Warden entity
        (its `properties` count only for entities Warden's data does not know). `token` is
        the request's bearer token (`Depends(warden.token)`). One `POST /v1/checks` per
        `batch_size` items (keep it at most Warden's `server.max_batch_size`).

        A deny drops the item; a refused token is a 401 and anything that is not an answer
        (Warden unavailable, a garbled or short answer, a rejected batch) a 503, as with
        `authorize`: no partial list is ever returned. The decisions join `decisions_of`.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        candidates = list(items)
        allowed: list[T] = []
        decisions: list[Decision] = getattr(request.state, _STATE_DECISIONS, [])
        for start in range(0, len(candidates), batch_size):
            batch = candidates[start : start + batch_size]
            checks = [Check(action, resource(item), context) for item in batch]
            try:
                answers = await self.client.check_many(token, checks)
            except InvalidTokenError as refused:
                raise _refused(refused) from None
            except WardenError as failure:
                raise _unavailable(str(failure)) from failure
            decisions.extend(answers)
            allowed.extend(
                item for item, decision in zip(batch, answers, strict=True) if decision.allowed
            )
        setattr(request.state, _STATE_DECISIONS, decisions)
        return allowed

    def filter_plan(
        self,
        action: str,
        resource_type: str,
        *,
        context: ContextSource = None,
    ) -> Callable[..., Awaitable[FilterPlan]]:
        """A dependency giving Warden's data-filter plan: which resources of `resource_type`
        the request's bearer token may do `action` on (`POST /v1/filter`).

        For applications that render the plan themselves; `filter` renders it with SQLAlchemy.
        A refused token is a 401, an unavailable Warden a 503, a plan Warden cannot make a
        503 with reason `filter_unsupported` (see the module's documentation).
        """
        token_dependency = self.token

        async def warden_filter_plan(
            request: Request,
            response: Response,
            token: str = Depends(token_dependency),
        ) -> FilterPlan:
            ctx = context(request) if callable(context) else context
            return await self._plan(request, response, token, action, resource_type, ctx)

        warden_filter_plan.__name__ = f"warden_filter_plan_{action}_{resource_type}"
        setattr(warden_filter_plan, _MARKER, True)
        return warden_filter_plan

    def filter(
        self,
        model: Any,
        action: str,
        field_map: FieldMap,
        *,
        resource_type: str | None = None,
        context: ContextSource = None,
    ) -> Callable[..., Awaitable[Select[Any]]]:
        """A dependency giving `select(model)` restricted to the rows the request's bearer token
        may do `action` on: Warden's plan rendered by `warden.sqlalchemy.authorized_select`.

        `resource_type` defaults to `field_map.resource_type`, else to the model's class name.
        Add ordering, paging and the route's own conditions to the `Select`; never drop its
        `WHERE`. A refused token is a 401, an unavailable Warden a 503; a plan Warden cannot
        make, or one naming a field `field_map` does not map, a 503 with reason
        `filter_unsupported` or `filter_unmapped` (see the module's documentation).
        """
        from warden.sqlalchemy import authorized_select

        token_dependency = self.token
        resource = resource_type or field_map.resource_type or getattr(model, "__name__", None)
        if not isinstance(resource, str):
            raise ValueError(f"give the resource type of {model!r}: resource_type=...")

        async def warden_filter(
            request: Request,
            response: Response,
            token: str = Depends(token_dependency),
        ) -> Select[Any]:
            ctx = context(request) if callable(context) else context
            plan = await self._plan(request, response, token, action, resource, ctx)
            try:
                return authorized_select(model, plan, field_map)
            except FilterMappingError as unmapped:
                _log.error(
                    "Warden's plan for %s on %s cannot be rendered (decision %s): %s",
                    action,
                    resource,
                    plan.decision_id,
                    unmapped,
                )
                raise _filter_refused("filter_unmapped", plan.decision_id) from None

        warden_filter.__name__ = f"warden_filter_{action}_{resource}"
        setattr(warden_filter, _MARKER, True)
        return warden_filter

    async def _plan(
        self,
        request: Request,
        response: Response,
        token: str,
        action: str,
        resource_type: str,
        context: Mapping[str, Any] | None,
    ) -> FilterPlan:
        try:
            plan = await self.client.filter(token, action, resource_type, context)
        except InvalidTokenError as refused:
            raise _refused(refused) from None
        except FilterUnsupportedError as unsupported:
            _log.error(
                "Warden cannot filter %s on %s: policy %s: %s",
                action,
                resource_type,
                unsupported.policy,
                unsupported.detail,
            )
            raise _filter_refused("filter_unsupported", None) from None
        except WardenError as failure:
            raise _unavailable(str(failure)) from failure
        plans: list[FilterPlan] = getattr(request.state, _STATE_PLANS, [])
        plans.append(plan)
        setattr(request.state, _STATE_PLANS, plans)
        response.headers[self.decision_header] = plan.decision_id
        return plan

    async def _decide(
        self,
        request: Request,
        response: Response,
        token: str,
        action: str,
        resource_type: str,
        resource_id: str,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        try:
            decision = await self.client.check(
                token, action, resource_type, resource_id, properties, context
            )
        except InvalidTokenError as refused:
            raise _refused(refused) from None
        except WardenError as failure:
            raise _unavailable(str(failure)) from failure
        self._record(request, response, decision)
        return decision

    def _record(self, request: Request, response: Response, decision: Decision) -> None:
        decisions: list[Decision] = getattr(request.state, _STATE_DECISIONS, [])
        decisions.append(decision)
        setattr(request.state, _STATE_DECISIONS, decisions)
        response.headers[self.decision_header] = decision.decision_id

    async def _gateway_decision(
        self,
        request: Request,
        response: Response,
        context_token: str,
        action: str,
        resource_type: str,
        resource_id: str,
    ) -> Decision | None:
        """The gateway's allow, when its context token verifies and covers exactly this
        check; None (ask Warden) otherwise."""
        claims = await self._verified_context(request, context_token)
        if claims is None:
            return None
        if not claims.covers(action, resource_type, resource_id):
            _log.debug(
                "the context token of decision %s covers %s on %s::%s, not %s on %s::%s: "
                "asking Warden",
                claims.decision_id,
                claims.action,
                claims.resource.type,
                claims.resource.id,
                action,
                resource_type,
                resource_id,
            )
            return None
        decision = Decision(
            allowed=True,
            decision_id=claims.decision_id,
            reason="permitted",
            principal=claims.principal,
            policy_revision=GATEWAY_POLICY_REVISION,
        )
        _log.debug(
            "decision %s (the gateway's, from its context token) for %s on %s::%s: allow",
            claims.decision_id,
            action,
            resource_type,
            resource_id,
        )
        self._record(request, response, decision)
        return decision

    async def _verified_context(self, request: Request, context_token: str) -> ContextClaims | None:
        """The request's context token verified (once per request), or None when it is
        refused or cannot be verified: both are logged at WARNING, the token never."""
        verifier = self.context_verifier
        if verifier is None:
            return None
        earlier: tuple[str, ContextClaims | None] | None = getattr(
            request.state, _STATE_CONTEXT, None
        )
        if earlier is not None and earlier[0] == context_token:
            return earlier[1]
        claims: ContextClaims | None = None
        try:
            if "," in context_token:
                # The header came more than once: which one the gateway set is not known.
                raise ContextTokenError("context_malformed", f"{CONTEXT_HEADER} sent twice")
            claims = await verifier.verify(context_token)
        except ContextTokenError as refused:
            _log.warning(
                "%s refused (%s: %s) on %s %s; asking Warden instead",
                CONTEXT_HEADER,
                refused.reason,
                refused.detail,
                request.method,
                request.url.path,
            )
        except WardenError as failure:
            _log.warning(
                "%s not verified: Warden's keys or issuer are not available (%s); asking "
                "Warden instead",
                CONTEXT_HEADER,
                failure,
            )
        setattr(request.state, _STATE_CONTEXT, (context_token, claims))
        return claims


def _refused(refused: InvalidTokenError) -> WardenHTTPException:
    challenge = refused.www_authenticate or (
        f'Bearer error="invalid_token", error_description="{refused.reason}"'
    )
    return WardenHTTPException(
        401,
        "invalid-token",
        "Unauthorized",
        f"the bearer token was refused: {refused.reason}",
        headers={"WWW-Authenticate": challenge},
        reason=refused.reason,
    )


def _unavailable(why: str) -> WardenHTTPException:
    # The detail stays generic: internals go to the log, not to the client.
    del why
    return WardenHTTPException(
        503,
        "authorization-unavailable",
        "Service Unavailable",
        "authorization is unavailable; the request was not served",
        headers={"Retry-After": "1"},
    )


def _filter_refused(reason: str, decision_id: str | None) -> WardenHTTPException:
    # No Retry-After: the same policies and mapping give the same answer. The policy or the
    # field goes to the log, not to the client.
    extra: dict[str, Any] = {"reason": reason}
    if decision_id is not None:
        extra["decision_id"] = decision_id
    return WardenHTTPException(
        503,
        "filter-unsupported",
        "Service Unavailable",
        "this list cannot be filtered under the current policies; nothing was listed",
        **extra,
    )


def filter_plans_of(request: Request) -> list[FilterPlan]:
    """The data-filter plans Warden made for this request so far, oldest first."""
    plans: list[FilterPlan] = getattr(request.state, _STATE_PLANS, [])
    return list(plans)


def decisions_of(request: Request) -> list[Decision]:
    """The decisions Warden made for this request so far, oldest first."""
    decisions: list[Decision] = getattr(request.state, _STATE_DECISIONS, [])
    return list(decisions)


def _is_warden_dependency(call: Any) -> bool:
    return bool(getattr(call, _MARKER, False))


def _dependant_has_warden(dependant: Any) -> bool:
    if _is_warden_dependency(getattr(dependant, "call", None)):
        return True
    return any(_dependant_has_warden(sub) for sub in getattr(dependant, "dependencies", []))


def routes_without_warden(app: FastAPI | APIRouter, *, allow: Iterable[str] = ()) -> list[str]:
    """`"METHOD /path"` of every API route that no Warden dependency protects.

    `allow` lists paths meant to be public (e.g. `"/healthz"`). Use it in a test:
    `assert routes_without_warden(app, allow={"/healthz"}) == []`.
    """
    allowed = set(allow)
    missing = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path in allowed:
            continue
        if not _dependant_has_warden(route.dependant):
            for method in sorted(route.methods or ()):
                missing.append(f"{method} {route.path}")
    return missing


def is_warden_dependency(dependency: DependsParam | Callable[..., Any]) -> bool:
    """Whether `dependency` (a callable or a `Depends(...)`) is one of this module's checks."""
    call = dependency.dependency if isinstance(dependency, DependsParam) else dependency
    return _is_warden_dependency(call)
