"""Revocation (#9): a token revoked in Warden is refused by the app on the very next request.

Against the real `warden serve` with a store; revocations go through Warden's admin API,
which applies them before it answers, so no test waits.
"""

from __future__ import annotations

import uuid

import httpx2
from fastapi.testclient import TestClient

from tests.warden_server import ISSUER, WardenServer

ROADMAP = "/tenants/acme/documents/roadmap"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_revoked(response: httpx2.Response) -> None:
    """The app's answer to a token Warden refuses as revoked: 401, reason `token_revoked`."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "token_revoked"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    assert 'error_description="token_revoked"' in challenge
    assert "x-decision-id" not in response.headers


def test_a_token_revoked_by_jti_is_refused_on_the_next_request(
    client_with_store: TestClient, warden_with_store: WardenServer
) -> None:
    client, warden = client_with_store, warden_with_store
    jti = f"jti-{uuid.uuid4()}"
    token = warden.mint("carol", "acme", jti=jti)
    sibling = warden.mint("carol", "acme", jti=f"jti-{uuid.uuid4()}")
    assert client.get(ROADMAP, headers=bearer(token)).status_code == 200

    revocation = warden.revoke("token", jti, reason="laptop stolen")
    assert (revocation["kind"], revocation["issuer"], revocation["value"]) == ("token", ISSUER, jti)
    assert revocation["reason"] == "laptop stolen"

    assert_revoked(client.get(ROADMAP, headers=bearer(token)))
    assert_revoked(client.get("/me", headers=bearer(token)))
    # The same user's other token (another jti) is untouched.
    assert client.get(ROADMAP, headers=bearer(sibling)).status_code == 200


def test_a_revoked_token_changes_nothing(
    client_with_store: TestClient, warden_with_store: WardenServer
) -> None:
    client, warden = client_with_store, warden_with_store
    jti = f"jti-{uuid.uuid4()}"
    owner = warden.mint("bob", "acme", jti=jti)
    warden.revoke("token", jti)

    assert_revoked(client.delete(ROADMAP, headers=bearer(owner)))
    assert_revoked(client.patch(ROADMAP, json={"title": "x"}, headers=bearer(owner)))
    still_there = client.get(ROADMAP, headers=bearer(warden.mint("carol", "acme")))
    assert still_there.status_code == 200
    assert still_there.json()["title"] == "Acme roadmap 2027"


def test_a_subject_revoked_in_warden_loses_every_earlier_token(
    client_with_store: TestClient, warden_with_store: WardenServer
) -> None:
    client, warden = client_with_store, warden_with_store
    earlier = [warden.mint("dave", "acme", jti=f"jti-{uuid.uuid4()}") for _ in range(2)]
    earlier.append(warden.mint("dave", "acme"))  # no jti at all
    for token in earlier:
        assert client.get(ROADMAP, headers=bearer(token)).status_code == 200

    revocation = warden.revoke("subject", "dave", reason="left the company")

    for token in earlier:
        assert_revoked(client.get(ROADMAP, headers=bearer(token)))
    # Another user is untouched, and a token issued from the revocation on works.
    assert client.get(ROADMAP, headers=bearer(warden.mint("carol", "acme"))).status_code == 200
    fresh = warden.mint("dave", "acme", iat=revocation["revoked_at"])
    assert client.get(ROADMAP, headers=bearer(fresh)).status_code == 200
