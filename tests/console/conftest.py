"""Fixtures of the console's browser tests (issue #24): the real `warden serve`, started with the
fault tests' harness (`tests/reliability/harness.py`: the example pack, a SQLite store, an admin
credential from `warden admin init`, a decision log, a test IdP whose RS256 key the tests hold),
plus `[tokens]` so the service-account inventory answers; and Debian's Chromium, headless,
driven by Playwright. Every test's page ends as a full-page screenshot in
`$WARDEN_ARTIFACTS/console/<test>.png` (default `target/test-artifacts/console/`), whether the
test passed or not, and the server's log is copied there at the end.

Run through `bash scripts/test-console.sh`, or from this directory with its venv:
`.venv/bin/python -m pytest -q`. `WARDEN_BIN` names the warden binary (default
`target/debug/warden`), `WARDEN_CHROMIUM` the browser (default `/usr/bin/chromium`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, sync_playwright

import harness

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = (
    Path(os.environ.get("WARDEN_ARTIFACTS") or REPO_ROOT / "target" / "test-artifacts") / "console"
)
CHROMIUM = os.environ.get("WARDEN_CHROMIUM", "/usr/bin/chromium")
COOKIE = "warden_console"
"""The console's session cookie."""
TIMEOUT_MS = 15_000
"""How long a browser step may wait for the page."""
HTTP_TIMEOUT = 10.0


class ConsoleConfig(harness.WardenConfig):
    """The harness's configuration (store, decision log, issuer, PEP credential) plus `[tokens]`:
    the service-account inventory needs Warden as an issuer."""

    def write(self, port: int, pep_digest: str) -> Path:
        path = super().write(port, pep_digest)
        kek = self.workdir / "kek.hex"
        kek.write_text(secrets.token_hex(32) + "\n")
        with path.open("a") as config:
            config.write(
                "[tokens]\n"
                f"issuer = {json.dumps(f'http://127.0.0.1:{port}')}\n"
                f"key_encryption_key_file = {json.dumps(str(kek))}\n"
            )
        return path


@dataclass
class Stack:
    """The running Warden and what the tests need to talk to it without the browser."""

    warden: harness.Warden
    key: harness.SigningKey
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=HTTP_TIMEOUT))

    @property
    def url(self) -> str:
        return self.warden.url

    @property
    def admin_secret(self) -> str:
        assert self.warden.admin_secret is not None
        return self.warden.admin_secret

    @property
    def audit_dir(self) -> Path:
        return self.warden.config.workdir / "audit"

    def admin(
        self, method: str, path: str, body: Any = None, *, secret: str | None = None
    ) -> httpx2.Response:
        """The admin API with a Bearer admin credential (the init one unless given)."""
        return self.http.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {secret or self.admin_secret}"},
        )

    def check(self, token: str, action: str, resource_id: str) -> httpx2.Response:
        """`POST /v1/check` for a Document, with the end user's token."""
        return self.http.post(
            f"{self.url}/v1/check",
            json={"action": action, "resource": {"type": "Document", "id": resource_id}},
            headers={"Authorization": f"Bearer {token}"},
        )

    def evaluate(self, subject_id: str, action: str, resource_id: str) -> httpx2.Response:
        """AuthZEN `POST /access/v1/evaluation` as the PEP."""
        return self.http.post(
            f"{self.url}/access/v1/evaluation",
            json={
                "subject": {"type": "User", "id": subject_id},
                "action": {"name": action},
                "resource": {"type": "Document", "id": resource_id},
            },
            headers={"Authorization": f"Bearer {self.warden.pep_secret}"},
        )

    def decision_records(self) -> dict[str, dict[str, Any]]:
        """Every decision record of the decision log, by id."""
        return harness.audit_records(self.audit_dir)

    def api_login(self, secret: str | None = None) -> tuple[str, dict[str, Any]]:
        """`POST /console/session` without a browser: the session cookie's value and the answer."""
        response = self.http.post(
            f"{self.url}/console/session", json={"credential": secret or self.admin_secret}
        )
        assert response.status_code == 200, response.text
        cookie = session_cookie(response)
        assert cookie is not None, f"no {COOKIE} cookie set: {response.headers}"
        answer: dict[str, Any] = response.json()
        return cookie, answer

    def login(self, page: Page, secret: str | None = None) -> dict[str, Any]:
        """Logs in through the console's form; the session answer."""
        open_console(page, self.url)
        page.locator("#login-credential").fill(secret or self.admin_secret)
        with page.expect_response(
            lambda r: r.url.endswith("/console/session") and r.request.method == "POST"
        ) as answer:
            page.get_by_role("button", name="Log in", exact=True).click()
        assert answer.value.status == 200, answer.value.text()
        page.locator("#nav").wait_for(state="visible")
        session: dict[str, Any] = answer.value.json()
        return session


def session_cookie(response: httpx2.Response) -> str | None:
    """The value of the console cookie a response sets, if it sets one."""
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        if COOKIE in parsed:
            return parsed[COOKIE].value
    return None


def open_console(page: Page, url: str) -> Any:
    """Opens the console and waits until its script has started (and resumed any session)."""
    response = page.goto(f"{url}/console")
    page.locator("body[data-ready='true']").wait_for(state="attached")
    return response


@dataclass
class PageWatch:
    """What a page did that no test wants: script errors, dialogs, CSP violations."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp_violations.append(message.text)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self) -> None:
        assert not self.errors, f"script errors on the page: {self.errors}"
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        assert not self.csp_violations, f"CSP violations: {self.csp_violations}"


@pytest.fixture(scope="session", autouse=True)
def _kill_leftovers() -> Iterator[None]:
    """No process a test started outlives the session."""
    try:
        yield
    finally:
        harness.kill_leftovers()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One Warden for the whole suite: the tests use distinct principals and sessions."""
    workdir = tmp_path_factory.mktemp("console")
    key = harness.SigningKey()
    config = ConsoleConfig(
        workdir,
        issuer=harness.issuer_settings(jwks_file=harness.write_jwks_file(workdir, key)),
        storage={"url": "sqlite://warden.db"},
    )
    warden = harness.Warden(config, admin=True).start()
    running = Stack(warden, key)
    try:
        yield running
    finally:
        running.http.close()
        warden.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if warden.log_path.exists():
            shutil.copyfile(warden.log_path, ARTIFACTS / "warden.log")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set WARDEN_CHROMIUM)")
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def page(browser: Browser, watch: PageWatch, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page; its screenshot is kept at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    opened.on("pageerror", lambda error: watch.errors.append(str(error)))
    opened.on("console", watch.on_console)
    opened.on("dialog", watch.on_dialog)
    try:
        yield opened
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        finally:
            context.close()
