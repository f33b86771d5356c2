"""Verify the context token a gateway passes inward (`X-Warden-Context`, issue #23).

When Warden allows a request at the gateway (`/v1/forward-auth`, Envoy `ext_authz`) and has
`[context_token]` configured, its answer carries a short-lived JWT signed by Warden's own key:
"principal P may do action A on resource R; decision D; for upstream U; until T". The gateway
copies it upstream. An upstream that verifies it for its own audience may take it instead of
asking Warden the same question again (`warden.fastapi` does, for a check with no other input).

What this module checks, in this order, before any claim is read (the first failure is a
`ContextTokenError` with its reason code):

- the header: `typ` is `warden-ctx+jwt` (an access token, `at+jwt`, is not a context token,
  and a context token is never an access token), `alg` is EdDSA or ES256 (never `none`,
  HS*, RSA), `kid` names a key of Warden's JWKS of that type and curve;
- the signature, with that key and its algorithm only;
- `iss` is Warden's issuer (given, else read once from `/.well-known/openid-configuration`),
  `aud` is exactly this upstream's audience (a string, not a list), `exp` / `nbf` / `iat`
  hold at `now` within a leeway of at most 5 seconds, and the token lives at most 300 s
  (Warden's maximum);
- the decision claims are all there and typed: `sub`, `principal_type`, `decision_id`,
  `action`, `resource.type`, `resource.id`, `jti`.

What it is not: a decision. The claims say what Warden allowed at the edge; whether they cover
the check an application wants to make (same action, same resource, no other input) is the
caller's question (`ContextClaims.covers`). A context token is not single-use: within its
lifetime (30 s by default) it can be sent again to the same upstream for the same action and
resource, and a revocation made after the gateway's decision is not seen until it expires.

Keys: Warden's JWKS is fetched through the `AsyncWardenClient` (`jwks()`) on first use, cached,
and fetched again when a token names a `kid` the cache lacks (a rotation) or the cache is older
than 300 s, but never more than once per 10 s, so a stream of tokens with made-up `kid`s cannot
turn into a stream of JWKS requests. PyJWT does the signature (extra `gateway`:
`pip install "warden-client[gateway]"`); it is imported when a verifier is made.

Time is an argument: `verify(token, now=...)` (default: the wall clock). Tests:
`tests/test_context_token.py`, against the real `warden serve`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warden.errors import ContextTokenError, WardenProtocolError, WardenUnavailableError
from warden.models import EntityRef, Principal

if TYPE_CHECKING:
    from jwt import PyJWK

    from warden.client import AsyncWardenClient

CONTEXT_HEADER = "X-Warden-Context"
"""The header a gateway sets upstream with the context token."""
TOKEN_TYPE = "warden-ctx+jwt"  # noqa: S105 - a JOSE type name, not a secret
"""The header `typ` of a context token."""
ALGORITHMS = ("EdDSA", "ES256")
"""The only algorithms accepted (Warden signs with one of these)."""
MAX_LEEWAY_SECONDS = 5.0
"""The most clock skew a verifier may tolerate: the token lives seconds, not minutes."""
MAX_LIFETIME_SECONDS = 300
"""Warden's longest context-token lifetime (`[context_token] ttl_seconds`): a longer one was
not made by Warden."""
MAX_TOKEN_BYTES = 8192
"""A longer header is refused before it is parsed."""
JWKS_REFETCH_SECONDS = 10.0
"""At most one JWKS request per this many seconds, whatever the tokens name."""
JWKS_MAX_AGE_SECONDS = 300.0
"""A cached JWKS older than this is fetched again before use (Warden sends `max-age=300`)."""

# The key each algorithm needs: (kty, crv).
_KEY_SHAPES = {"EdDSA": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}
_MISSING_PYJWT = (
    "verifying context tokens needs PyJWT with its crypto extra: "
    'pip install "warden-client[gateway]" (or "pyjwt[crypto]>=2.8")'
)


def _require_pyjwt() -> None:
    """Fail now, with the install command, when PyJWT or `cryptography` is missing."""
    try:
        import jwt
        from jwt.algorithms import has_crypto
    except ImportError as missing:
        raise ImportError(_MISSING_PYJWT) from missing
    del jwt
    if not has_crypto:
        raise ImportError(_MISSING_PYJWT)


@dataclass(frozen=True, slots=True)
class ContextClaims:
    """A verified context token: what Warden allowed at the gateway, for this upstream.

    Only `ContextTokenVerifier.verify` builds it, after the signature and every claim checked.
    `principal.id` is the token's `sub`; `decision_id` is the gateway decision's record in
    Warden's decision log (also sent as `X-Decision-Id`); `resource.id` is tenant-qualified
    for tenant-scoped types (`acme/roadmap`), as in a check. `original_jti` is the end user's
    token `jti`, when it had one.
    """

    issuer: str
    audience: str
    principal: Principal
    decision_id: str
    action: str
    resource: EntityRef
    jti: str
    issued_at: int
    expires_at: int
    original_jti: str | None = None

    def covers(self, action: str, resource_type: str, resource_id: str) -> bool:
        """Whether this is Warden's allow of exactly `action` on `resource_type::resource_id`."""
        return (
            self.action == action
            and self.resource.type == resource_type
            and self.resource.id == resource_id
        )


def _refuse(reason: str, detail: str) -> ContextTokenError:
    return ContextTokenError(reason, detail)


def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _refuse("context_claims_invalid", f"`{name}` is missing or not a non-empty string")
    return value


def _optional_string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _refuse("context_claims_invalid", f"`{name}` is not a non-empty string")
    return value


def _seconds(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    # bool is an int in Python; a JWT time is a JSON number (Warden writes integers).
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse("context_claims_invalid", f"`{name}` is missing or not a number")
    return int(value)


def _usable_key(jwk: Any) -> tuple[str, str] | None:
    """`(kid, alg)` of a JWKS entry that can verify a context token, else None."""
    if not isinstance(jwk, dict):
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
        return None
    shape = (jwk.get("kty"), jwk.get("crv"))
    algorithm = jwk.get("alg")
    if algorithm is None:
        algorithm = next((alg for alg, needs in _KEY_SHAPES.items() if needs == shape), None)
    if algorithm not in _KEY_SHAPES or _KEY_SHAPES[algorithm] != shape:
        return None
    return kid, algorithm


def parse_jwks(document: Any) -> dict[str, PyJWK]:
    """The keys of a JWKS that can verify a context token, by `kid`: EdDSA (OKP, Ed25519) and
    ES256 (EC, P-256) signing keys. Others (RSA, `oct`, `use: enc`, a curve that does not fit
    the `alg`) are left out, so a token naming them is `context_key_unknown`. A document that
    is not a JWKS is a `WardenProtocolError`."""
    import jwt

    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise WardenProtocolError("Warden's JWKS has no `keys` list")
    usable: dict[str, PyJWK] = {}
    for jwk in keys:
        found = _usable_key(jwk)
        if found is None:
            continue
        kid, algorithm = found
        try:
            usable[kid] = jwt.PyJWK(jwk, algorithm=algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
    return usable


def _header(token: str) -> tuple[str, str]:
    """`(alg, kid)` of a token whose header is a context token's; refused otherwise."""
    import jwt

    if len(token) > MAX_TOKEN_BYTES:
        raise _refuse("context_malformed", f"longer than {MAX_TOKEN_BYTES} bytes")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refuse("context_malformed", "not a compact JWS") from None
    if header.get("typ") != TOKEN_TYPE:
        raise _refuse("context_type_invalid", f"the header `typ` is not {TOKEN_TYPE}")
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise _refuse("context_algorithm_refused", f"`alg` {algorithm!r} is not EdDSA or ES256")
    if "crit" in header or header.get("b64") is not None:
        raise _refuse("context_malformed", "the header has `crit` or `b64`")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("context_malformed", "the header has no `kid`")
    return str(algorithm), kid


def _signed_payload(token: str, key: PyJWK, algorithm: str) -> dict[str, Any]:
    """The payload, once `key` verified the signature with `algorithm` (and only that)."""
    import jwt

    if key.algorithm_name != algorithm:
        raise _refuse("context_algorithm_refused", f"key is for {key.algorithm_name}")
    try:
        decoded = jwt.PyJWS(algorithms=[algorithm]).decode_complete(
            token, key=key.key, algorithms=[algorithm]
        )
    except jwt.InvalidSignatureError:
        raise _refuse("context_signature_invalid", "the signature does not verify") from None
    except jwt.InvalidAlgorithmError:
        raise _refuse("context_algorithm_refused", "the algorithm does not fit") from None
    except jwt.PyJWTError:
        raise _refuse("context_malformed", "not a compact JWS") from None
    try:
        payload = json.loads(decoded["payload"])
    except ValueError:
        raise _refuse("context_malformed", "the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise _refuse("context_malformed", "the payload is not a JSON object")
    return payload


def check_claims(
    payload: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway_seconds: float,
) -> ContextClaims:
    """The claims of a payload whose signature verified: issuer, audience, times, then the
    decision's claims. No I/O; the first failure is a `ContextTokenError`."""
    if payload.get("iss") != issuer:
        raise _refuse("context_issuer_mismatch", "`iss` is not Warden's issuer")
    if payload.get("aud") != audience:
        raise _refuse("context_audience_mismatch", "`aud` is not this upstream")
    expires_at = _seconds(payload, "exp")
    issued_at = _seconds(payload, "iat")
    not_before = _seconds(payload, "nbf")
    if now > expires_at + leeway_seconds:
        raise _refuse("context_expired", "`exp` has passed")
    if now + leeway_seconds < not_before or now + leeway_seconds < issued_at:
        raise _refuse("context_not_yet_valid", "`nbf` or `iat` is in the future")
    if not 0 < expires_at - issued_at <= MAX_LIFETIME_SECONDS:
        raise _refuse("context_claims_invalid", f"a lifetime outside 1 to {MAX_LIFETIME_SECONDS} s")
    resource = payload.get("resource")
    if not isinstance(resource, dict):
        raise _refuse("context_claims_invalid", "`resource` is missing or not an object")
    return ContextClaims(
        issuer=issuer,
        audience=audience,
        principal=Principal(
            type=_string(payload, "principal_type"),
            id=_string(payload, "sub"),
            tenant=_optional_string(payload, "tenant"),
        ),
        decision_id=_string(payload, "decision_id"),
        action=_string(payload, "action"),
        resource=EntityRef(type=_string(resource, "type"), id=_string(resource, "id")),
        jti=_string(payload, "jti"),
        issued_at=issued_at,
        expires_at=expires_at,
        original_jti=_optional_string(payload, "original_jti"),
    )


def check_settings(audience: str, issuer: str | None, leeway_seconds: float) -> None:
    """Refuse settings no verifier should run with (`ValueError`), and a missing PyJWT
    (`ImportError`, naming the extra to install), before the first request."""
    if not isinstance(audience, str) or not audience or audience.strip() != audience:
        raise ValueError("the audience must be a non-empty name without surrounding spaces")
    if not 0 <= leeway_seconds <= MAX_LEEWAY_SECONDS:
        raise ValueError(f"leeway_seconds must be between 0 and {MAX_LEEWAY_SECONDS}")
    if issuer is not None and not issuer:
        raise ValueError("the issuer must not be empty (None: ask Warden)")
    _require_pyjwt()


class ContextTokenVerifier:
    """Verifies context tokens for one upstream `audience` against Warden's JWKS.

    `issuer` is Warden's `[tokens] issuer`; without it, it is read once from Warden's
    `/.well-known/openid-configuration` (over the client's connection, so trust that as you
    trust the client's TLS). `leeway_seconds` is the clock skew tolerated on `exp`, `nbf` and
    `iat` (0 to 5). One verifier per application: it caches the keys (see the module doc).
    """

    def __init__(
        self,
        client: AsyncWardenClient,
        audience: str,
        *,
        issuer: str | None = None,
        leeway_seconds: float = MAX_LEEWAY_SECONDS,
    ) -> None:
        check_settings(audience, issuer, leeway_seconds)
        self._client = client
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self._issuer = issuer
        self._keys: dict[str, PyJWK] = {}
        self._keys_fetched_at: float | None = None
        self._last_fetch_attempt: float | None = None
        # One JWKS request at a time: concurrent requests wait for it instead of each asking.
        self._fetch_lock = asyncio.Lock()

    async def verify(self, token: str, *, now: float | None = None) -> ContextClaims:
        """The claims of `token`, if it is a context token Warden signed for this audience and
        it holds at `now` (seconds since the epoch; default: the wall clock).

        Raises `ContextTokenError` when the token is refused, `WardenUnavailableError` (or a
        `WardenRequestError`, for a Warden without `[tokens]`) when the keys or the issuer
        cannot be had.
        """
        at = time.time() if now is None else now
        algorithm, kid = _header(token)
        key = await self._key(kid, at)
        payload = _signed_payload(token, key, algorithm)
        issuer = await self._warden_issuer()
        return check_claims(
            payload,
            issuer=issuer,
            audience=self.audience,
            now=at,
            leeway_seconds=self.leeway_seconds,
        )

    async def _warden_issuer(self) -> str:
        if self._issuer is None:
            configuration = await self._client.openid_configuration()
            issuer = configuration.get("issuer")
            if not isinstance(issuer, str) or not issuer:
                raise WardenProtocolError("Warden's OpenID configuration names no issuer")
            self._issuer = issuer
        return self._issuer

    def _may_fetch(self, now: float) -> bool:
        last = self._last_fetch_attempt
        # A clock that went back counts as time passed, not as a reason to never fetch again.
        return last is None or now - last >= JWKS_REFETCH_SECONDS or now < last

    def _fresh(self, now: float) -> bool:
        fetched = self._keys_fetched_at
        return fetched is not None and 0 <= now - fetched < JWKS_MAX_AGE_SECONDS

    async def _key(self, kid: str, now: float) -> PyJWK:
        if self._fresh(now) and kid in self._keys:
            return self._keys[kid]
        async with self._fetch_lock:
            # Another request may have fetched while this one waited.
            if not (self._fresh(now) and kid in self._keys) and self._may_fetch(now):
                self._last_fetch_attempt = now
                self._keys = parse_jwks(await self._client.jwks())
                self._keys_fetched_at = now
            if not self._fresh(now):
                raise WardenUnavailableError(
                    "Warden's JWKS could not be fetched again yet (at most once per "
                    f"{JWKS_REFETCH_SECONDS:.0f} s)",
                )
            if kid not in self._keys:
                raise _refuse("context_key_unknown", "no key of Warden's JWKS has this `kid`")
            return self._keys[kid]
