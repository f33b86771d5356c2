"""Typed results of Warden's answers, and the parsing that builds them.

Only the parsers here build these types from Warden's JSON, and they check every field they
keep: a missing or mistyped field is a `WardenProtocolError`, never a default that could
read as an allow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.errors import WardenProtocolError

JsonObject = dict[str, Any]

EXECUTE_ALL = "execute_all"
DENY_ON_FIRST_DENY = "deny_on_first_deny"
PERMIT_ON_FIRST_PERMIT = "permit_on_first_permit"

# The decision at which a short-circuit semantic stops; `execute_all` never stops early.
_SHORT_CIRCUIT_STOPS_AT: dict[str, bool] = {DENY_ON_FIRST_DENY: False, PERMIT_ON_FIRST_PERMIT: True}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who Warden verified the bearer token to be.

    `id` is Warden's entity id, `<tenant>/<subject>` when the issuer maps a tenant claim.
    """

    type: str
    id: str
    tenant: str | None

    @property
    def local_id(self) -> str:
        """The id without its `<tenant>/` prefix."""
        prefix = f"{self.tenant}/" if self.tenant else ""
        return self.id[len(prefix) :] if prefix and self.id.startswith(prefix) else self.id


@dataclass(frozen=True, slots=True)
class PolicyReason:
    """A policy that determined a decision, with its `@description`."""

    policy: str
    description: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of `POST /v1/check` (or one result of `POST /v1/checks`): the decision
    for one verified principal.

    `reason` is Warden's reason code: `permitted`, `no_permit`, `forbidden`,
    `tenant_boundary`, `tenant_missing`, `evaluation_error` or `invalid_request`.
    """

    allowed: bool
    decision_id: str
    reason: str
    principal: Principal
    policy_revision: str
    reasons: tuple[PolicyReason, ...] = ()
    errors: tuple[JsonObject, ...] = ()


@dataclass(frozen=True, slots=True)
class Authentication:
    """The answer of `POST /v1/authenticate`: who the bearer token is, with no decision.

    `subject`, `roles` and `scopes` come from the token's claims as Warden mapped them;
    `expires_at` is the token's `exp` (seconds since the epoch), when it has one.
    """

    principal: Principal
    subject: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    issuer: str
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class Entity:
    """A subject or resource of an AuthZEN evaluation (or a resource of a check).

    `properties` only matter when Warden does not know the entity: what Warden's entity
    data says always wins.
    """

    type: str
    id: str
    properties: Mapping[str, Any] | None = None

    def to_json(self) -> JsonObject:
        body: JsonObject = {"type": self.type, "id": self.id}
        if self.properties is not None:
            body["properties"] = dict(self.properties)
        return body


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The answer to one AuthZEN evaluation."""

    allowed: bool
    decision_id: str | None
    reason: str | None
    policy_revision: str | None
    policies: tuple[PolicyReason, ...] = ()
    context: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvaluationRequest:
    """One item of `evaluate_many`; fields left `None` take the batch's defaults."""

    subject: Entity | None = None
    action: str | None = None
    resource: Entity | None = None
    context: Mapping[str, Any] | None = None

    def to_json(self) -> JsonObject:
        body: JsonObject = {}
        if self.subject is not None:
            body["subject"] = self.subject.to_json()
        if self.action is not None:
            body["action"] = {"name": self.action}
        if self.resource is not None:
            body["resource"] = self.resource.to_json()
        if self.context is not None:
            body["context"] = dict(self.context)
        return body


@dataclass(frozen=True, slots=True)
class Check:
    """One item of `check_many`: what `check` decides, for the batch's bearer token."""

    action: str
    resource: Entity
    context: Mapping[str, Any] | None = None

    def to_json(self) -> JsonObject:
        return check_body(self.action, self.resource, self.context)


def _object(value: Any, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise WardenProtocolError(f"{what} is not a JSON object")
    return value


def _string(obj: JsonObject, key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise WardenProtocolError(f"{what}.{key} is not a string")
    return value


def _optional_string(obj: JsonObject, key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise WardenProtocolError(f"{what}.{key} is neither a string nor null")
    return value


def _reasons(value: Any, what: str) -> tuple[PolicyReason, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WardenProtocolError(f"{what} is not a list")
    reasons = []
    for item in value:
        entry = _object(item, what)
        reasons.append(
            PolicyReason(
                policy=_string(entry, "policy", what),
                description=_optional_string(entry, "description", what),
            )
        )
    return tuple(reasons)


def _principal(value: Any, what: str) -> Principal:
    principal_json = _object(value, what)
    return Principal(
        type=_string(principal_json, "type", what),
        id=_string(principal_json, "id", what),
        tenant=_optional_string(principal_json, "tenant", what),
    )


def _decision(
    answer: JsonObject, what: str, principal: Principal, policy_revision: str
) -> Decision:
    verdict = answer.get("decision")
    if verdict not in ("allow", "deny"):
        raise WardenProtocolError(f'{what}.decision is neither "allow" nor "deny"')
    errors = answer.get("errors") or []
    if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
        raise WardenProtocolError(f"{what}.errors is not a list of objects")
    return Decision(
        allowed=verdict == "allow",
        decision_id=_string(answer, "decision_id", what),
        reason=_string(answer, "reason", what),
        principal=principal,
        policy_revision=policy_revision,
        reasons=_reasons(answer.get("reasons"), f"{what}.reasons"),
        errors=tuple(errors),
    )


def parse_decision(body: Any) -> Decision:
    """Parse the JSON answer of `POST /v1/check`."""
    what = "check answer"
    answer = _object(body, what)
    return _decision(
        answer,
        what,
        _principal(answer.get("principal"), f"{what}.principal"),
        _string(answer, "policy_revision", what),
    )


def parse_decisions(body: Any, n_requested: int) -> list[Decision]:
    """Parse the JSON answer of `POST /v1/checks`: exactly one result per check, in order.

    Every `Decision` gets the answer's principal and policy revision.
    """
    what = "checks answer"
    answer = _object(body, what)
    principal = _principal(answer.get("principal"), f"{what}.principal")
    policy_revision = _string(answer, "policy_revision", what)
    results = answer.get("results")
    if not isinstance(results, list):
        raise WardenProtocolError(f"{what}.results is not a list")
    if len(results) != n_requested:
        raise WardenProtocolError(f"Warden answered {len(results)} results to {n_requested} checks")
    return [
        _decision(
            _object(item, f"{what}.results[{i}]"),
            f"{what}.results[{i}]",
            principal,
            policy_revision,
        )
        for i, item in enumerate(results)
    ]


def _strings(obj: JsonObject, key: str, what: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise WardenProtocolError(f"{what}.{key} is not a list of strings")
    return tuple(value)


def parse_authentication(body: Any) -> Authentication:
    """Parse the JSON answer of `POST /v1/authenticate`."""
    answer = _object(body, "authenticate answer")
    what = "authenticate answer.principal"
    principal_json = _object(answer.get("principal"), what)
    expires_at = answer.get("expires_at")
    if expires_at is not None and (not isinstance(expires_at, int) or isinstance(expires_at, bool)):
        raise WardenProtocolError("authenticate answer.expires_at is neither an integer nor null")
    return Authentication(
        principal=Principal(
            type=_string(principal_json, "type", what),
            id=_string(principal_json, "id", what),
            tenant=_optional_string(principal_json, "tenant", what),
        ),
        subject=_string(principal_json, "subject", what),
        roles=_strings(principal_json, "roles", what),
        scopes=_strings(principal_json, "scopes", what),
        issuer=_string(answer, "issuer", "authenticate answer"),
        expires_at=expires_at,
    )


def parse_evaluation(body: Any) -> Evaluation:
    """Parse one AuthZEN evaluation answer (`{"decision": bool, "context": {...}}`)."""
    answer = _object(body, "evaluation answer")
    verdict = answer.get("decision")
    if not isinstance(verdict, bool):
        raise WardenProtocolError("evaluation answer.decision is not a boolean")
    context = answer.get("context") or {}
    context = _object(context, "evaluation answer.context")
    return Evaluation(
        allowed=verdict,
        decision_id=_optional_string(context, "decision_id", "evaluation context"),
        reason=_optional_string(context, "reason", "evaluation context"),
        policy_revision=_optional_string(context, "policy_revision", "evaluation context"),
        policies=_reasons(context.get("policies"), "evaluation context.policies"),
        context=context,
    )


def parse_evaluations(body: Any, n_requested: int, semantic: str | None = None) -> list[Evaluation]:
    """Parse a batch answer to `n_requested` evaluations asked with `semantic`.

    With `execute_all` (or no semantic: Warden's default) there is exactly one answer per
    request. A short-circuit semantic may end the answer early, but only at the item that
    stopped it: a deny for `deny_on_first_deny`, a permit for `permit_on_first_permit`.
    Anything else (more answers than requests, none to a non-empty batch, a short answer that
    does not end where the semantic stops, an answer that goes on past a decision that stops
    the semantic, a short answer to an unknown semantic) is a
    `WardenProtocolError`: the caller could otherwise read a missing deny as no deny.
    """
    answer = _object(body, "evaluations answer")
    items = answer.get("evaluations")
    if not isinstance(items, list):
        raise WardenProtocolError("evaluations answer.evaluations is not a list")
    evaluations = [parse_evaluation(item) for item in items]
    received = len(evaluations)
    stops_at = _SHORT_CIRCUIT_STOPS_AT.get(semantic or EXECUTE_ALL)
    if stops_at is not None and any(e.allowed == stops_at for e in evaluations[:-1]):
        # The semantic stops at the first such decision: one before the last means answers
        # were made up or reordered.
        raise WardenProtocolError(
            f"Warden answered {received} evaluations to {n_requested} requests,"
            f" going on past a decision that stops {semantic}"
        )
    if received != n_requested:
        short_but_stopped = (
            0 < received < n_requested
            and stops_at is not None
            and evaluations[-1].allowed == stops_at
        )
        if not short_but_stopped:
            raise WardenProtocolError(
                f"Warden answered {received} evaluations to {n_requested} requests"
                f" (evaluations_semantic {semantic or EXECUTE_ALL})"
            )
    return evaluations


def check_body(
    action: str,
    resource: Entity,
    context: Mapping[str, Any] | None,
) -> JsonObject:
    """The JSON body of `POST /v1/check`."""
    body: JsonObject = {"action": action, "resource": resource.to_json()}
    if context is not None:
        body["context"] = dict(context)
    return body


def checks_body(checks: Sequence[Check]) -> JsonObject:
    """The JSON body of `POST /v1/checks`."""
    return {"checks": [check.to_json() for check in checks]}


def evaluations_body(
    evaluations: Sequence[EvaluationRequest],
    *,
    subject: Entity | None,
    action: str | None,
    resource: Entity | None,
    context: Mapping[str, Any] | None,
    semantic: str | None,
) -> JsonObject:
    """The JSON body of `POST /access/v1/evaluations`."""
    body: JsonObject = EvaluationRequest(subject, action, resource, context).to_json()
    body["evaluations"] = [item.to_json() for item in evaluations]
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic}
    return body
