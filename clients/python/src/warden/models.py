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


# -- data filters (`POST /v1/filter`) ----------------------------------------------------------

ALWAYS_ALLOWED = "always_allowed"
ALWAYS_DENIED = "always_denied"
CONDITIONAL = "conditional"
_FILTER_DECISIONS = (ALWAYS_ALLOWED, ALWAYS_DENIED, CONDITIONAL)

COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
ORDER_OPS = ("lt", "le", "gt", "ge")
# Deeper trees than this are not a plan Warden writes: refused rather than recursed into.
MAX_CONDITION_DEPTH = 200


@dataclass(frozen=True, slots=True)
class EntityRef:
    """An entity named by type and id, with nothing else: a filter value or a plan's tenant."""

    type: str
    id: str


# A value a filter condition compares with. An application column that holds an entity
# reference holds the entity's id; the renderers compare `EntityRef.id`.
FilterValue = str | int | bool | EntityRef


@dataclass(frozen=True, slots=True)
class And:
    """Every one of `args` holds (no args: true)."""

    args: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one of `args` holds (no args: false)."""

    args: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """`arg` does not hold."""

    arg: Condition


@dataclass(frozen=True, slots=True)
class Compare:
    """`field op value`; `op` is one of `COMPARE_OPS` (the order ones for integers only)."""

    op: str
    field: str
    value: FilterValue


@dataclass(frozen=True, slots=True)
class InSet:
    """The field's value is one of `values`."""

    field: str
    values: tuple[FilterValue, ...]


@dataclass(frozen=True, slots=True)
class Contains:
    """The set-valued field contains `value`."""

    field: str
    value: FilterValue


@dataclass(frozen=True, slots=True)
class ContainsAny:
    """The set-valued field contains at least one of `values`."""

    field: str
    values: tuple[FilterValue, ...]


@dataclass(frozen=True, slots=True)
class ContainsAll:
    """The set-valued field contains every one of `values`."""

    field: str
    values: tuple[FilterValue, ...]


@dataclass(frozen=True, slots=True)
class Has:
    """The optional field is present (SQL: `IS NOT NULL`)."""

    field: str


@dataclass(frozen=True, slots=True)
class IdIn:
    """The resource's own id is one of `ids`."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemberOf:
    """The resource is in `entity` (Cedar's `in`): the entity itself, or a descendant."""

    entity: EntityRef


Condition = (
    And | Or | Not | Compare | InSet | Contains | ContainsAny | ContainsAll | Has | IdIn | MemberOf
)


@dataclass(frozen=True, slots=True)
class FilterPlan:
    """The answer of `POST /v1/filter`: which resources of one type a principal may act on.

    `decision` is `always_allowed`, `always_denied` or `conditional`; only a conditional plan
    has a `condition`: the JSON tree as Warden sent it, and `condition_tree`, the same tree
    parsed and checked (an operator or value this SDK does not know is a
    `WardenProtocolError` when the answer is parsed, never a condition that is skipped).
    `reason` is informational (`principal_disabled` for a plan denied by a refusal).
    """

    decision: str
    condition: JsonObject | None
    condition_tree: Condition | None
    action: str
    resource_type: str
    principal: Principal
    tenant: EntityRef | None
    policies: tuple[str, ...]
    policy_revision: str
    decision_id: str
    reason: str

    @property
    def always_allowed(self) -> bool:
        return self.decision == ALWAYS_ALLOWED

    @property
    def always_denied(self) -> bool:
        return self.decision == ALWAYS_DENIED


def _filter_value(value: Any, what: str) -> FilterValue:
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, dict) and set(value) == {"type", "id"}:
        return EntityRef(type=_string(value, "type", what), id=_string(value, "id", what))
    raise WardenProtocolError(f"{what} is not a string, integer, boolean or entity reference")


def _filter_values(obj: JsonObject, key: str, what: str) -> tuple[FilterValue, ...]:
    values = obj.get(key)
    if not isinstance(values, list):
        raise WardenProtocolError(f"{what}.{key} is not a list")
    return tuple(_filter_value(value, f"{what}.{key}[{i}]") for i, value in enumerate(values))


def parse_condition(body: Any, what: str = "condition", depth: int = 0) -> Condition:
    """Parse one condition tree; anything not in the documented grammar is a protocol error."""
    if depth > MAX_CONDITION_DEPTH:
        raise WardenProtocolError(f"{what} is nested deeper than {MAX_CONDITION_DEPTH}")
    node = _object(body, what)
    op = node.get("op")
    if op in ("and", "or"):
        args = node.get("args")
        if not isinstance(args, list):
            raise WardenProtocolError(f"{what}.args is not a list")
        parsed = tuple(
            parse_condition(arg, f"{what}.args[{i}]", depth + 1) for i, arg in enumerate(args)
        )
        return And(parsed) if op == "and" else Or(parsed)
    if op == "not":
        return Not(parse_condition(node.get("arg"), f"{what}.arg", depth + 1))
    if op in COMPARE_OPS:
        value = _filter_value(node.get("value"), f"{what}.value")
        if op in ORDER_OPS and (not isinstance(value, int) or isinstance(value, bool)):
            raise WardenProtocolError(
                f"{what}: `{op}` compares with a value that is not an integer"
            )
        return Compare(op=op, field=_string(node, "field", what), value=value)
    if op == "in_set":
        return InSet(_string(node, "field", what), _filter_values(node, "values", what))
    if op == "contains":
        return Contains(_string(node, "field", what), _filter_value(node.get("value"), what))
    if op == "contains_any":
        return ContainsAny(_string(node, "field", what), _filter_values(node, "values", what))
    if op == "contains_all":
        return ContainsAll(_string(node, "field", what), _filter_values(node, "values", what))
    if op == "has":
        return Has(_string(node, "field", what))
    if op == "id_in":
        ids = node.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise WardenProtocolError(f"{what}.ids is not a list of strings")
        return IdIn(tuple(ids))
    if op == "member_of":
        entity = _object(node.get("entity"), f"{what}.entity")
        return MemberOf(
            EntityRef(
                type=_string(entity, "type", f"{what}.entity"),
                id=_string(entity, "id", f"{what}.entity"),
            )
        )
    raise WardenProtocolError(f"{what}.op {op!r} is not an operator this SDK knows")


def _policy_ids(value: Any, what: str) -> tuple[str, ...]:
    """`policies` as a list of ids (or of `{"policy": id, ...}` objects)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WardenProtocolError(f"{what} is not a list")
    ids = []
    for item in value:
        if isinstance(item, str):
            ids.append(item)
        else:
            ids.append(_string(_object(item, what), "policy", what))
    return tuple(ids)


def parse_filter_plan(body: Any, action: str, resource_type: str) -> FilterPlan:
    """Parse the JSON answer of `POST /v1/filter` to a question about `action` on
    `resource_type`; a plan about anything else is a protocol error."""
    what = "filter answer"
    answer = _object(body, what)
    decision = answer.get("decision")
    if decision not in _FILTER_DECISIONS:
        raise WardenProtocolError(f"{what}.decision is not one of {', '.join(_FILTER_DECISIONS)}")
    raw_condition = answer.get("condition")
    condition: JsonObject | None = None
    tree: Condition | None = None
    if decision == CONDITIONAL:
        condition = _object(raw_condition, f"{what}.condition")
        tree = parse_condition(condition, f"{what}.condition")
    elif raw_condition is not None:
        raise WardenProtocolError(f"{what} is {decision} and has a condition")
    if answer.get("action") != action or answer.get("resource_type") != resource_type:
        raise WardenProtocolError(
            f"{what} is about {answer.get('action')!r} on {answer.get('resource_type')!r},"
            f" not {action!r} on {resource_type!r}"
        )
    tenant_json = answer.get("tenant")
    tenant = None
    if tenant_json is not None:
        tenant_object = _object(tenant_json, f"{what}.tenant")
        tenant = EntityRef(
            type=_string(tenant_object, "type", f"{what}.tenant"),
            id=_string(tenant_object, "id", f"{what}.tenant"),
        )
    return FilterPlan(
        decision=decision,
        condition=condition,
        condition_tree=tree,
        action=action,
        resource_type=resource_type,
        principal=_principal(answer.get("principal"), f"{what}.principal"),
        tenant=tenant,
        policies=_policy_ids(answer.get("policies"), f"{what}.policies"),
        policy_revision=_string(answer, "policy_revision", what),
        decision_id=_string(answer, "decision_id", what),
        reason=_string(answer, "reason", what),
    )


def filter_body(
    action: str,
    resource_type: str,
    context: Mapping[str, Any] | None,
    subject: Entity | None = None,
) -> JsonObject:
    """The JSON body of `POST /v1/filter` (with `subject`: as a PEP)."""
    body: JsonObject = {"action": action, "resource_type": resource_type}
    if subject is not None:
        body["subject"] = subject.to_json()
    if context is not None:
        body["context"] = dict(context)
    return body


# -- AuthZEN searches ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of an AuthZEN search: its results (entities, or action names) and the token
    of the next page (`""` at the end)."""

    results: tuple[Any, ...]
    next_token: str


def search_page_body(body: JsonObject, page_size: int | None, token: str | None) -> JsonObject:
    """`body` with its `page` request."""
    page: JsonObject = {}
    if page_size is not None:
        page["limit"] = page_size
    if token:
        page["token"] = token
    return {**body, "page": page} if page else dict(body)


def parse_search_page(body: Any, entity_type: str | None) -> SearchPage:
    """Parse a search answer: entities of `entity_type`, or action names when it is None."""
    what = "search answer"
    answer = _object(body, what)
    page = _object(answer.get("page"), f"{what}.page")
    next_token = page.get("next_token") or ""
    if not isinstance(next_token, str):
        raise WardenProtocolError(f"{what}.page.next_token is not a string")
    items = answer.get("results")
    if not isinstance(items, list):
        raise WardenProtocolError(f"{what}.results is not a list")
    results: list[Any] = []
    for i, item in enumerate(items):
        result = _object(item, f"{what}.results[{i}]")
        if entity_type is None:
            results.append(_string(result, "name", f"{what}.results[{i}]"))
            continue
        found_type = _string(result, "type", f"{what}.results[{i}]")
        if found_type != entity_type:
            raise WardenProtocolError(
                f"{what}.results[{i}] is a {found_type}, not the {entity_type} searched for"
            )
        results.append(Entity(found_type, _string(result, "id", f"{what}.results[{i}]")))
    return SearchPage(tuple(results), next_token)


def resource_search_body(
    subject: Entity, action: str, resource_type: str, context: Mapping[str, Any] | None
) -> JsonObject:
    """The JSON body of `POST /access/v1/search/resource` (without its page)."""
    body: JsonObject = {
        "subject": subject.to_json(),
        "action": {"name": action},
        "resource": {"type": resource_type},
    }
    if context is not None:
        body["context"] = dict(context)
    return body


def subject_search_body(
    subject_type: str, action: str, resource: Entity, context: Mapping[str, Any] | None
) -> JsonObject:
    """The JSON body of `POST /access/v1/search/subject` (without its page)."""
    body: JsonObject = {
        "subject": {"type": subject_type},
        "action": {"name": action},
        "resource": resource.to_json(),
    }
    if context is not None:
        body["context"] = dict(context)
    return body


def action_search_body(
    subject: Entity, resource: Entity, context: Mapping[str, Any] | None
) -> JsonObject:
    """The JSON body of `POST /access/v1/search/action` (without its page)."""
    body: JsonObject = {"subject": subject.to_json(), "resource": resource.to_json()}
    if context is not None:
        body["context"] = dict(context)
    return body
