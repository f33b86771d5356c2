"""Service accounts (#10): a workload gets its token from Warden's own `POST /oauth2/token`
and calls the app with it; the app authorizes it like any other principal
(`ServiceAccount::"<tenant>/<client_id>"`, examples/saas/service-accounts.cedar), and
disabling the account in Warden ends every token it holds on the very next request.

Against the real `warden serve` with a store and `[tokens]`; accounts are made through the
admin API. Each test makes its own account, so they share the session's Warden safely.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_revocation import assert_revoked, bearer
from tests.warden_server import WardenServer
from warden import (
    AsyncServiceAccountTokens,
    AsyncWardenClient,
    ServiceAccountAuth,
    ServiceAccountTokens,
    TokenRequestError,
)

ROADMAP = "/tenants/acme/documents/roadmap"
READ = "documents:read"


def new_account(warden: WardenServer, scopes: list[str]) -> dict[str, Any]:
    """A fresh account of acme, owned by acme's alice (examples/saas/entities.json)."""
    account = warden.create_service_account(
        "acme",
        name=f"indexer-{uuid.uuid4().hex[:8]}",
        owner="alice",
        scopes=scopes,
        purpose="search indexing",
    )
    assert account["client_id"].startswith("sa_")
    assert account["client_secret"].startswith("wsa_")
    return account


def tokens_for(
    warden: WardenServer, account: dict[str, Any], **kwargs: Any
) -> ServiceAccountTokens:
    return ServiceAccountTokens(
        warden.url,
        client_id=account["client_id"],
        client_secret=account["client_secret"],
        **kwargs,
    )


def test_a_service_account_reads_may_not_edit_and_is_cut_off_when_disabled(
    client_with_store: TestClient, warden_with_store: WardenServer
) -> None:
    client, warden = client_with_store, warden_with_store
    account = new_account(warden, [READ])
    client_id = account["client_id"]

    with tokens_for(warden, account, scope=READ) as tokens:
        auth = ServiceAccountAuth(tokens)

        read = client.get(ROADMAP, auth=auth)
        assert read.status_code == 200, read.text
        assert read.json()["title"] == "Acme roadmap 2027"
        assert client.get("/me", auth=auth).json() == {
            "type": "ServiceAccount",
            "id": f"acme/{client_id}",
            "tenant": "acme",
        }

        # documents:read is not documents:write, and acme's account sees nothing of globex.
        edit = client.patch(ROADMAP, json={"title": "rewritten"}, auth=auth)
        assert edit.status_code == 403, edit.text
        assert edit.json()["reason"] == "no_permit"
        assert client.get(ROADMAP, auth=auth).json()["title"] == "Acme roadmap 2027"
        assert client.get("/tenants/globex/documents/roadmap", auth=auth).status_code == 403

        live = tokens.token()
        warden.disable_service_account("acme", client_id, reason="workload decommissioned")

        # The token it already holds is refused at once, on every route…
        assert_revoked(client.get(ROADMAP, headers=bearer(live)))
        assert_revoked(client.get("/me", headers=bearer(live)))
        # …and the helper's one retry cannot get another: the account is disabled.
        with pytest.raises(TokenRequestError) as refused:
            client.get(ROADMAP, auth=auth)
        assert (refused.value.error, refused.value.status) == ("invalid_client", 401)


def test_a_scope_the_account_lacks_is_invalid_scope(warden_with_store: WardenServer) -> None:
    warden = warden_with_store
    account = new_account(warden, [READ])

    with (
        tokens_for(warden, account, scope=[READ, "documents:write"]) as tokens,
        pytest.raises(TokenRequestError) as refused,
    ):
        tokens.token()
    assert (refused.value.error, refused.value.status) == ("invalid_scope", 400)

    # The scope it has is granted, with the credentials in the body this time.
    with tokens_for(warden, account, scope=READ, auth_method="client_secret_post") as tokens:
        assert tokens.token()


def test_a_wrong_secret_is_invalid_client(warden_with_store: WardenServer) -> None:
    warden = warden_with_store
    account = {**new_account(warden, [READ]), "client_secret": "wsa_not-the-secret"}
    with tokens_for(warden, account) as tokens, pytest.raises(TokenRequestError) as refused:
        tokens.token()
    assert (refused.value.error, refused.value.status) == ("invalid_client", 401)


def test_async_tokens_authenticate_as_the_service_account(
    warden_with_store: WardenServer,
) -> None:
    warden = warden_with_store
    account = new_account(warden, [READ])

    async def main() -> None:
        async with (
            AsyncServiceAccountTokens(
                warden.url,
                client_id=account["client_id"],
                client_secret=account["client_secret"],
            ) as tokens,
            AsyncWardenClient(warden.url) as client,
        ):
            token = await tokens.token()
            assert await tokens.token() == token
            identity = await client.authenticate(token)
        assert identity.principal.type == "ServiceAccount"
        assert identity.principal.id == f"acme/{account['client_id']}"
        assert identity.principal.tenant == "acme"
        # No scope asked for: all of the account's scopes.
        assert identity.scopes == (READ,)
        assert identity.issuer == warden.url

    asyncio.run(main())
