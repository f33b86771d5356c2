"""The web console (issue #24) in a real browser against the real `warden serve`: logging in and
out, the session cookie and the CSP, finding a denied decision and reading its explanation,
revoking an entitlement from a review campaign (the next request is denied), a long campaign
loaded a page at a time with the role an entitlement was used through, CSRF refusals
without a browser, recorded markup shown as text, a tenant-scoped admin, and a policy diff.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import httpx2
from playwright.sync_api import Page, expect

import harness
from conftest import COOKIE, HTTP_TIMEOUT, PageWatch, Stack, open_console, session_cookie

CSP_DIRECTIVES = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
]
PAYLOAD = "<img id=xss-probe src=x onerror=alert(document.domain)>"
"""Markup an attacker could get into a decision record (a token's subject, a resource id)."""


def in_page_fetch(page: Page, method: str, path: str) -> int:
    """The status of a fetch made by the page itself (the browser's cookies, no CSRF header)."""
    status: int = page.evaluate(
        """async ([method, path]) =>
            (await fetch(path, {method, credentials: 'same-origin'})).status""",
        [method, path],
    )
    return status


def search_decisions(page: Page, *, tenant: str = "", decision: str = "") -> None:
    page.get_by_role("link", name="Decisions", exact=True).click()
    page.locator("#search-tenant").fill(tenant)
    page.locator("#search-decision").select_option(decision)
    with page.expect_response(lambda r: "/v1/admin/decisions" in r.url) as answer:
        page.get_by_role("button", name="Search", exact=True).click()
    assert answer.value.status == 200, answer.value.text()
    page.locator("#decision-table").wait_for()


# ---------------------------------------------------------------------------------------------
# a. Logging in and out


def test_login_session_cookie_csp_and_logout(page: Page, stack: Stack, watch: PageWatch) -> None:
    response = open_console(page, stack.url)
    assert response is not None and response.status == 200
    csp = response.headers.get("content-security-policy", "")
    for directive in CSP_DIRECTIVES:
        assert directive in csp, f"{directive!r} missing from the CSP header {csp!r}"
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()

    # A wrong credential: the problem's detail is shown, and there is no session.
    page.locator("#login-credential").fill("wdn_admin_" + secrets.token_urlsafe(32))
    with page.expect_response(
        lambda r: r.url.endswith("/console/session") and r.request.method == "POST"
    ) as refused:
        page.get_by_role("button", name="Log in", exact=True).click()
    assert refused.value.status == 401
    detail = refused.value.json()["detail"]
    assert detail
    expect(page.get_by_role("alert")).to_contain_text(detail)
    expect(page.locator("#nav")).to_be_hidden()
    expect(page.locator("#login-credential")).to_have_value("")
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert in_page_fetch(page, "GET", "/console/session") == 401

    # The right one: the console, and a cookie the page's script cannot read.
    page.locator("#login-credential").fill(stack.admin_secret)
    with page.expect_response(
        lambda r: r.url.endswith("/console/session") and r.request.method == "POST"
    ) as accepted:
        page.get_by_role("button", name="Log in", exact=True).click()
    assert accepted.value.status == 200, accepted.value.text()
    session = accepted.value.json()
    assert session["csrf_token"]
    assert session["admin"]["tenant_scope"] is None
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(session["admin"]["credential_id"])
    expect(page.get_by_role("heading", name="Decisions", exact=True)).to_be_visible()
    [cookie] = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert COOKIE not in page.evaluate("document.cookie")
    # The credential is kept nowhere by the page.
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    expect(page.locator("#login-credential")).to_have_value("")
    assert stack.admin_secret not in page.content()

    # A reload resumes the session (GET /console/session hands out the CSRF token again).
    page.reload()
    page.locator("body[data-ready='true']").wait_for(state="attached")
    expect(page.locator("#who")).to_contain_text(session["admin"]["credential_id"])

    # Logging out ends the session on the server, not only in the page.
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    assert in_page_fetch(page, "GET", "/console/session") == 401
    replayed = httpx2.get(
        f"{stack.url}/console/session",
        headers={"Cookie": f"{COOKIE}={cookie['value']}"},
        timeout=HTTP_TIMEOUT,
    )
    assert replayed.status_code == 401, "the session outlived its logout"
    watch.assert_clean()


# ---------------------------------------------------------------------------------------------
# b. A denied decision and its explanation


def test_find_a_denied_decision_and_read_its_explanation(
    page: Page, stack: Stack, watch: PageWatch
) -> None:
    carol = stack.key.mint("carol", "acme")
    answer = stack.check(carol, "delete", "acme/roadmap")
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "deny"
    decision_id = answer.json()["decision_id"]
    recorded = stack.admin("GET", f"/v1/decisions/{decision_id}")
    assert recorded.status_code == 200, recorded.text
    record = recorded.json()
    explanation = record["explanation"]
    assert explanation["summary"]

    stack.login(page)
    search_decisions(page, tenant="acme", decision="deny")
    row = page.locator(f'#decision-table tr[data-decision-id="{decision_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text('User::"acme/carol"')
    expect(row).to_contain_text('Document::"acme/roadmap"')
    expect(row).to_contain_text(record["reason"])
    # Every row of a deny search is a deny.
    for cell in page.locator("#decision-table tbody tr td:nth-child(5)").all_inner_texts():
        assert cell.strip() == "deny"

    row.get_by_role("link", name=f"Explain decision {decision_id}").click()
    expect(page).to_have_url(re.compile(f"#/decisions/{re.escape(decision_id)}$"))
    expect(page.locator("#explanation-summary")).to_have_text(explanation["summary"])
    details = explanation.get("details", [])
    if details:
        expect(page.locator("#explanation-details li")).to_have_text(details)
    expect(page.locator("#decision-body")).to_contain_text(record["reason"])
    raw = page.locator("#decision-body pre").last.inner_text()
    assert json.loads(raw)["id"] == decision_id
    watch.assert_clean()


# ---------------------------------------------------------------------------------------------
# c. Revoking an entitlement from a review campaign


def test_revoke_an_entitlement_from_a_review(page: Page, stack: Stack, watch: PageWatch) -> None:
    principal, role = 'User::"acme/erin"', 'Role::"viewer"'
    granted = stack.admin(
        "POST",
        "/v1/admin/tenants/acme/roles/grant",
        {"principal": principal, "role": role, "reason": "console review test"},
    )
    assert granted.status_code == 200, granted.text
    erin = stack.key.mint("erin", "acme")
    before = stack.check(erin, "read", "acme/roadmap")
    assert before.status_code == 200, before.text
    assert before.json()["decision"] == "allow", before.json()

    stack.login(page)
    page.get_by_role("link", name="Reviews", exact=True).click()
    page.locator("#reviews-tenant").fill("acme")
    page.get_by_role("button", name="Show campaigns", exact=True).click()
    expect(page).to_have_url(re.compile("#/reviews/acme$"))
    name = f"Console review {secrets.token_hex(3)}"
    page.locator("#campaign-name").fill(name)
    page.locator("#campaign-scope").select_option("roles")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/admin/tenants/acme/reviews") and r.request.method == "POST"
    ) as created:
        page.get_by_role("button", name="Create campaign", exact=True).click()
    assert created.value.status == 201, created.value.text()
    campaign = created.value.json()["campaign"]
    assert campaign["name"] == name
    expect(page).to_have_url(re.compile(f"#/reviews/acme/{re.escape(campaign['id'])}$"))
    expect(page.locator("#items-table")).to_be_visible()

    shown = stack.admin("GET", f"/v1/admin/tenants/acme/reviews/{campaign['id']}")
    assert shown.status_code == 200, shown.text
    items = shown.json()["items"]
    ours = [
        item
        for item in items
        if item["principal"] == principal and role in (item.get("role"), item.get("entitlement"))
    ]
    assert len(ours) == 1, f"no single item for {role} of {principal}: {items}"
    item = ours[0]
    assert item["decision"] is None
    row = page.locator(f'#items-table tr[data-item-id="{item["id"]}"]')
    expect(row).to_contain_text("pending")
    if item["usage"].get("last_decision_id"):
        last = item["usage"]["last_decision_id"]
        expect(row.locator(f'a[href="#/decisions/{last}"]')).to_be_visible()

    what = item["entitlement"]
    page.get_by_role("button", name=f"Revoke {what} from {principal}", exact=True).click()
    note = f"left the team ({secrets.token_hex(2)})"
    row.get_by_label(f"Why revoke {what} from {principal}?").fill(note)
    with page.expect_response(
        lambda r: r.url.endswith(f"/items/{item['id']}") and r.request.method == "POST"
    ) as decided:
        page.get_by_role(
            "button", name=f"Confirm revoke {what} from {principal}", exact=True
        ).click()
    assert decided.value.status == 200, decided.value.text()
    expect(row.locator(".item-decision")).to_contain_text("revoked")
    expect(row.locator(".item-decision")).to_contain_text(note)
    expect(row.get_by_role("button")).to_have_count(0)

    # The CSV report, fetched with the session's CSRF header and offered as a file.
    with page.expect_response(lambda r: "/report?format=csv" in r.url) as report:
        page.get_by_role("button", name="CSV report", exact=True).click()
    assert report.value.status == 200, report.value.text()
    shown_csv = page.locator("#report-output pre")
    expect(shown_csv).to_contain_text(item["id"])
    expect(shown_csv).to_contain_text("revoke")
    save = page.locator("#report-output a[download]")
    assert (save.get_attribute("href") or "").startswith("blob:")
    with page.expect_download() as download:
        save.click()
    saved = Path(download.value.path()).read_text()
    assert saved == report.value.text()

    after = stack.admin("GET", f"/v1/admin/tenants/acme/reviews/{campaign['id']}")
    [stored] = [i for i in after.json()["items"] if i["id"] == item["id"]]
    assert stored["decision"] == "revoke"
    assert stored["note"] == note
    denied = stack.check(erin, "read", "acme/roadmap")
    assert denied.status_code == 200, denied.text
    assert denied.json()["decision"] == "deny", denied.json()
    watch.assert_clean()


def test_an_item_decided_elsewhere_is_refused_and_read_again(
    page: Page, stack: Stack, watch: PageWatch
) -> None:
    principal, role = 'User::"acme/erin"', 'Role::"editor"'
    granted = stack.admin(
        "POST",
        "/v1/admin/tenants/acme/roles/grant",
        {"principal": principal, "role": role, "reason": "console conflict test"},
    )
    assert granted.status_code == 200, granted.text
    try:
        created = stack.admin(
            "POST",
            "/v1/admin/tenants/acme/reviews",
            {"name": f"Conflict {secrets.token_hex(3)}", "scope": "roles", "due_in_days": 7},
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign"]["id"]
        items = stack.admin("GET", f"/v1/admin/tenants/acme/reviews/{campaign_id}").json()["items"]
        [item] = [i for i in items if i["principal"] == principal and i["role"] == role]

        stack.login(page)
        page.evaluate("hash => { location.hash = hash; }", f"#/reviews/acme/{campaign_id}")
        row = page.locator(f'#items-table tr[data-item-id="{item["id"]}"]')
        expect(row).to_contain_text("pending")

        # Another admin keeps it first; this page's Keep is refused and the campaign read again.
        elsewhere = stack.admin(
            "POST",
            f"/v1/admin/tenants/acme/reviews/{campaign_id}/items/{item['id']}",
            {"decision": "keep", "note": "decided elsewhere"},
        )
        assert elsewhere.status_code == 200, elsewhere.text
        with page.expect_response(
            lambda r: r.url.endswith(f"/items/{item['id']}") and r.request.method == "POST"
        ) as refused:
            page.get_by_role(
                "button", name=f"Keep {item['entitlement']} for {principal}", exact=True
            ).click()
        assert refused.value.status == 409, refused.value.text()
        expect(page.get_by_role("alert")).to_contain_text(refused.value.json()["detail"])
        expect(row.locator(".item-decision")).to_contain_text("kept")
        expect(row.locator(".item-decision")).to_contain_text("decided elsewhere")
        expect(row.get_by_role("button")).to_have_count(0)
    finally:
        stack.admin(
            "POST",
            "/v1/admin/tenants/acme/roles/revoke",
            {"principal": principal, "role": role, "reason": "console conflict test done"},
        )
    watch.assert_clean()


def test_a_long_campaign_loads_page_by_page_and_says_what_a_role_was_used_through(
    page: Page, stack: Stack, watch: PageWatch
) -> None:
    # hank holds admin but only reads, which the viewers-read permit allows: his admin role was
    # used through Role::"viewer" (a lesser role may do). ivan holds viewer and reads: used
    # through his own role, nothing more to say. judy's editor grant makes a third item.
    grants = {
        "hank": 'Role::"admin"',
        "ivan": 'Role::"viewer"',
        "judy": 'Role::"editor"',
    }
    for who, role in grants.items():
        granted = stack.admin(
            "POST",
            "/v1/admin/tenants/acme/roles/grant",
            {"principal": f'User::"acme/{who}"', "role": role, "reason": "console paging test"},
        )
        assert granted.status_code == 200, granted.text
    try:
        for who in ("hank", "ivan"):
            read = stack.check(stack.key.mint(who, "acme"), "read", "acme/roadmap")
            assert read.status_code == 200, read.text
            assert read.json()["decision"] == "allow", read.json()
        created = stack.admin(
            "POST",
            "/v1/admin/tenants/acme/reviews",
            {"name": f"Paging {secrets.token_hex(3)}", "scope": "roles", "due_in_days": 7},
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign"]["id"]
        total = created.json()["campaign"]["counts"]["total"]
        assert total >= 3, created.text
        everything = stack.admin(
            "GET", f"/v1/admin/tenants/acme/reviews/{campaign_id}?limit=1000"
        ).json()
        assert everything["next"] is None and len(everything["items"]) == total, everything
        mine = {
            who: next(
                i
                for i in everything["items"]
                if i["principal"] == f'User::"acme/{who}"' and i["role"] == role
            )
            for who, role in grants.items()
        }
        assert mine["hank"]["usage"]["used_through"] == 'Role::"viewer"', mine["hank"]
        assert mine["ivan"]["usage"]["used_through"] == 'Role::"viewer"', mine["ivan"]

        def shown_text(count: int) -> str:
            return (
                f"All {total} items shown."
                if count >= total
                else f"Showing {count} of {total} items."
            )

        # Pages of two items (the console's page size is the body's data-page-size).
        stack.login(page)
        page.evaluate("size => { document.body.dataset.pageSize = size; }", "2")
        with page.expect_response(
            lambda r: f"/reviews/{campaign_id}?" in r.url and r.request.method == "GET"
        ) as first:
            page.evaluate("hash => { location.hash = hash; }", f"#/reviews/acme/{campaign_id}")
        assert first.value.status == 200, first.value.text()
        assert "limit=2" in first.value.url and "after=" not in first.value.url
        rows = page.locator("#items-table tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator("#items-shown")).to_have_text(shown_text(2))
        expect(page.get_by_role("status")).to_contain_text(shown_text(2))
        more = page.get_by_role("button", name="Load more items", exact=True)
        expect(more).to_be_visible()

        # Each click asks for the page after the last item shown, appends it and says how many
        # are shown (in the status region, which is aria-live).
        count = 2
        while count < total:
            with page.expect_response(lambda r: f"/reviews/{campaign_id}?after=" in r.url) as nxt:
                more.click()
            assert nxt.value.status == 200, nxt.value.text()
            assert "limit=2" in nxt.value.url
            count = min(total, count + 2)
            expect(rows).to_have_count(count)
            expect(page.locator("#items-shown")).to_have_text(shown_text(count))
            expect(page.get_by_role("status")).to_have_text(shown_text(count))
        # A last page that was full leaves an empty one to ask for; then the button is gone.
        if more.count():
            with page.expect_response(lambda r: f"/reviews/{campaign_id}?after=" in r.url):
                more.click()
        expect(more).to_have_count(0)
        expect(rows).to_have_count(total)
        shown_ids = [rows.nth(n).get_attribute("data-item-id") for n in range(total)]
        assert shown_ids == [item["id"] for item in everything["items"]]

        hank = page.locator(f'#items-table tr[data-item-id="{mine["hank"]["id"]}"]')
        expect(hank.locator(".item-usage")).to_contain_text('used through Role::"viewer"')
        expect(hank.locator(".item-usage")).to_contain_text("a lesser role may be enough")
        ivan = page.locator(f'#items-table tr[data-item-id="{mine["ivan"]["id"]}"]')
        expect(ivan.locator(".item-usage")).to_contain_text("In use")
        expect(ivan.locator(".item-usage")).not_to_contain_text("used through")

        # A decision updates its row and the counts, and keeps every page loaded: what the
        # page asks for after it is one item's worth, never the campaign again.
        asked: list[str] = []
        page.on(
            "request",
            lambda r: (
                asked.append(r.url)
                if f"/reviews/{campaign_id}" in r.url and r.method == "GET"
                else None
            ),
        )
        judy = mine["judy"]
        row = page.locator(f'#items-table tr[data-item-id="{judy["id"]}"]')
        with page.expect_response(
            lambda r: f"/reviews/{campaign_id}?limit=1" in r.url and r.request.method == "GET"
        ):
            page.get_by_role(
                "button", name=f"Keep {judy['entitlement']} for {judy['principal']}", exact=True
            ).click()
        expect(row.locator(".item-decision")).to_contain_text("kept")
        expect(rows).to_have_count(total)
        expect(page.locator("#items-shown")).to_have_text(shown_text(total))
        expect(page.locator("#campaign-facts")).to_contain_text("1 kept")
        assert asked and all("limit=1" in url for url in asked), asked
    finally:
        for who, role in grants.items():
            stack.admin(
                "POST",
                "/v1/admin/tenants/acme/roles/revoke",
                {"principal": f'User::"acme/{who}"', "role": role, "reason": "paging test done"},
            )
    watch.assert_clean()


# ---------------------------------------------------------------------------------------------
# d. CSRF: the cookie alone does nothing


def test_csrf_refusals_without_a_browser(page: Page, stack: Stack, watch: PageWatch) -> None:
    cookie, session = stack.api_login()
    token = session["csrf_token"]
    jar = {"Cookie": f"{COOKIE}={cookie}"}
    campaign_name = f"csrf-{secrets.token_hex(4)}"
    campaign = {
        "name": campaign_name,
        "scope": "roles",
        "reviewer": "owner",
        "due_at": 4_102_444_800,
        "auto_revoke_overdue": False,
        "unused_days": 90,
    }
    reviews = f"{stack.url}/v1/admin/tenants/acme/reviews"
    client = httpx2.Client(timeout=HTTP_TIMEOUT)
    try:
        for headers in (jar, {**jar, "X-CSRF-Token": "wrong-" + secrets.token_hex(16)}):
            listed = client.get(reviews, headers=headers)
            assert listed.status_code == 403, (headers.keys(), listed.text)
            created = client.post(reviews, json=campaign, headers=headers)
            assert created.status_code == 403, (headers.keys(), created.text)
            granted = client.post(
                f"{stack.url}/v1/admin/tenants/acme/roles/grant",
                json={"principal": 'User::"acme/dave"', "role": 'Role::"admin"', "reason": "csrf"},
                headers=headers,
            )
            assert granted.status_code == 403, (headers.keys(), granted.text)
        # Another session's token is as wrong as a made-up one.
        other_cookie, other = stack.api_login()
        assert other_cookie != cookie and other["csrf_token"] != token
        crossed = client.get(reviews, headers={**jar, "X-CSRF-Token": other["csrf_token"]})
        assert crossed.status_code == 403, crossed.text
        # Logging out needs the token too.
        out = client.delete(f"{stack.url}/console/session", headers=jar)
        assert out.status_code == 403, out.text
        assert client.get(f"{stack.url}/console/session", headers=jar).status_code == 200

        # With the token the same session works, and nothing above was done.
        ok = client.get(reviews, headers={**jar, "X-CSRF-Token": token})
        assert ok.status_code == 200, ok.text
        assert campaign_name not in [c["name"] for c in ok.json()["campaigns"]]
        dave = stack.check(stack.key.mint("dave", "acme"), "delete", "acme/roadmap")
        assert dave.json()["decision"] == "deny", "a grant went through without the CSRF token"

        # A login that is not JSON (a form or text/plain, which a cross-site form could send)
        # is refused and makes no session.
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            login = client.post(
                f"{stack.url}/console/session",
                content=json.dumps({"credential": stack.admin_secret}),
                headers={"Content-Type": content_type},
            )
            assert login.status_code in (400, 415), (content_type, login.text)
            assert session_cookie(login) is None
    finally:
        client.close()

    # The same cookie in a browser: the console resumes the session from it.
    page.context.add_cookies(
        [
            {
                "name": COOKIE,
                "value": cookie,
                "url": stack.url,
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    open_console(page, stack.url)
    expect(page.locator("#who")).to_contain_text(session["admin"]["credential_id"])
    watch.assert_clean()


# ---------------------------------------------------------------------------------------------
# e. Recorded markup is shown as text


def test_recorded_markup_is_shown_as_text(page: Page, stack: Stack, watch: PageWatch) -> None:
    # A token whose subject is markup (the principal id becomes acme/<subject>), and a PEP
    # asking about a resource whose id is markup.
    checked = stack.check(stack.key.mint(PAYLOAD, "acme"), "delete", "acme/roadmap")
    assert checked.status_code in (200, 401), checked.text
    evaluated = stack.evaluate("acme/carol", "read", f"acme/{PAYLOAD}")
    assert evaluated.status_code in (200, 400), evaluated.text
    records = [r for r in stack.decision_records().values() if PAYLOAD in json.dumps(r)]
    assert records, "no decision record holds the markup"
    record = records[-1]

    stack.login(page)
    search_decisions(page, decision="deny")
    if any(
        PAYLOAD in (r.get(part) or {}).get("id", "")
        for r in records
        for part in ("principal", "resource")
    ):
        expect(page.locator("#decision-table")).to_contain_text(PAYLOAD)
    page.get_by_role("link", name=f"Explain decision {record['id']}").click()
    expect(page.locator("#decision-body")).to_contain_text(PAYLOAD)
    expect(page.locator("#decision-body pre").last).to_contain_text(PAYLOAD)

    assert page.locator("#xss-probe").count() == 0
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    for other in records[:-1]:
        page.goto(f"{stack.url}/console#/decisions/{other['id']}")
        page.locator("body[data-ready='true']").wait_for(state="attached")
        expect(page.locator("#decision-body")).to_contain_text(PAYLOAD)
        assert page.locator("img").count() == 0
    watch.assert_clean()


# ---------------------------------------------------------------------------------------------
# The service-account inventory


def test_service_account_inventory_shows_findings(
    page: Page, stack: Stack, watch: PageWatch
) -> None:
    name = f"console-{secrets.token_hex(3)}"
    created = stack.admin(
        "POST",
        "/v1/admin/tenants/acme/service-accounts",
        {
            "name": name,
            "owner": 'User::"acme/alice"',
            "purpose": "console inventory test",
            "scopes": ["documents:read"],
            # Expiring soon (within the report's window), and far from a whole day, so the
            # finding's words ("expires in 2 day(s)") are the same in the API and the page.
            "expires_in_seconds": 2 * 86_400 + 3_600,
        },
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    report = stack.admin("GET", "/v1/admin/tenants/acme/service-accounts/report")
    assert report.status_code == 200, report.text
    [line] = [a for a in report.json()["accounts"] if a["client_id"] == client_id]
    assert line["findings"], line

    stack.login(page)
    page.get_by_role("link", name="Service accounts", exact=True).click()
    page.locator("#accounts-tenant").fill("acme")
    page.get_by_role("button", name="Show the inventory", exact=True).click()
    row = page.locator(f'#accounts-table tr[data-client-id="{client_id}"]')
    expect(row).to_contain_text(name)
    expect(row).to_contain_text('User::"acme/alice"')
    for finding in line["findings"]:
        expect(row).to_contain_text(finding["code"])
        expect(row).to_contain_text(finding["detail"])
    watch.assert_clean()


# ---------------------------------------------------------------------------------------------
# A tenant's admin, and the policy diff


def test_tenant_admin_sees_its_tenant_and_no_diff(
    page: Page, stack: Stack, watch: PageWatch
) -> None:
    created = stack.admin(
        "POST", "/v1/admin/credentials", {"tenant": "acme", "label": "console test"}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]

    session = stack.login(page, secret)
    assert session["admin"]["tenant_scope"] == "acme"
    expect(page.locator("#who")).to_contain_text("acme")
    expect(page.locator("#search-tenant")).to_have_value("acme")
    page.get_by_role("link", name="Reviews", exact=True).click()
    expect(page.locator("#reviews-tenant")).to_have_value("acme")

    body = {"files": {"extra.cedar": "forbid (principal, action, resource);"}, "since": "7d"}
    refused = stack.admin("POST", "/v1/admin/diff", {**body, "examples": 3}, secret=secret)
    assert refused.status_code == 403, refused.text
    page.get_by_role("link", name="Policy diff", exact=True).click()
    page.locator("#diff-name").fill("extra.cedar")
    page.locator("#diff-text").fill(body["files"]["extra.cedar"])
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(refused.json()["detail"])
    watch.assert_clean()


def test_policy_diff_lists_the_decisions_a_dropped_permit_changes(
    page: Page, stack: Stack, watch: PageWatch, tmp_path: Path
) -> None:
    # bob (an editor) reads a document: allowed by `viewers-read` only.
    bob = stack.key.mint("bob", "acme")
    read = stack.check(bob, "read", "acme/nda")
    assert read.status_code == 200 and read.json()["decision"] == "allow", read.text
    decision_id = read.json()["decision_id"]

    candidate = tmp_path / "candidate"
    shutil.copytree(harness.PACK_DIR, candidate)
    documents = candidate / "documents.cedar"
    text = documents.read_text()
    dropped = re.sub(r'@id\("viewers-read"\).*?;\n', "", text, count=1, flags=re.DOTALL)
    assert dropped != text and "viewers-read" not in dropped
    documents.write_text(dropped)

    stack.login(page)
    page.get_by_role("link", name="Policy diff", exact=True).click()
    page.locator("#diff-folder").set_input_files(candidate)
    with page.expect_response(lambda r: r.url.endswith("/v1/admin/diff")) as answered:
        page.get_by_role("button", name="Compare", exact=True).click()
    assert answered.value.status == 200, answered.value.text()
    sent: dict[str, Any] = json.loads(answered.value.request.post_data or "{}")
    assert "tenants/acme.cedar" in sent["files"] and "pack.toml" in sent["files"]
    assert not [name for name in sent["files"] if name.endswith((".json", ".yaml"))]
    report = answered.value.json()["report"]
    assert report["changed"] >= 1
    assert decision_id in [change["decision_id"] for change in report["changes"]]
    expect(page.locator("#diff-headline")).to_contain_text("would change")
    expect(page.locator("#diff-results")).to_contain_text("viewers-read")
    expect(page.get_by_role("link", name=f"Decision {decision_id}").first).to_be_visible()
    watch.assert_clean()
