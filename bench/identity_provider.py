"""A real OpenID Connect provider on 127.0.0.1 for class mode's tests and benchmarks: `oidc-provider-mock`.

Class mode signs learners in with Streamlit's own `st.login`, which speaks OIDC to an institution's identity
provider. The tests and the class benchmarks sign in for real, against this mock in a child process: its authorize
page takes a subject ("alice") and redirects back with an ID token carrying that user's claims (`add_user` sets
them: email, name, groups, ...). No traffic leaves the machine: the mock binds to 127.0.0.1, and the browser
drivers abort every request not to 127.0.0.1 (the mock's page links a stylesheet on a public CDN).

`secrets_toml` writes the `[auth]` section Streamlit reads and the course's `[course]` section (course/classroom.py).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from bench.app_server import free_port

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class IdentityProvider:
    """`python -m oidc_provider_mock` in a child process on a free port; stopped by its own PID."""

    def __init__(self, log: Path):
        self.log, self.port, self.proc = log, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def start(self, timeout: float = 60) -> IdentityProvider:
        cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.metadata_url, timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the identity provider did not start; log:\n{self.log.read_text()[-3000:]}")

    def add_user(self, subject: str, **claims: object) -> None:
        """Set the claims the provider gives `subject` when they sign in (replacing any it had)."""
        request = urllib.request.Request(f"{self.url}/users/{subject}", data=json.dumps(claims).encode(),
                                         method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 204, answer.status

    def secrets_toml(self, path: Path, app_url: str, instructors: tuple[str, ...] = ()) -> Path:
        """Write a secrets.toml for a course server at `app_url` that signs in through this provider. An `app_url`
        of "http://127.0.0.1:{port}" serves every server on this machine (Streamlit puts in its own port), and the
        one cookie secret makes a sign-in on one server good on the others, as behind a proxy."""
        path.write_text(
            "[auth]\n"
            f'redirect_uri = "{app_url}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            'client_id = "llm-course"\n'
            'client_secret = "llm-course-secret"\n'
            f'server_metadata_url = "{self.metadata_url}"\n\n'
            "[course]\n"
            f"instructors = {json.dumps(list(instructors))}\n", encoding="utf-8")
        return path

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # our own child, by its PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def only_this_machine(context) -> list[str]:
    """Make a Playwright browser context abort every request not to 127.0.0.1; returns the list of what it aborted."""
    aborted: list[str] = []

    def guard(route) -> None:
        if urlparse(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return aborted


def sign_in(page, app_url: str, subject: str, timeout: float = 60_000) -> None:
    """Press the course's Log in, type `subject` into the provider's form, press Authorize, and wait until the
    course shows who is signed in."""
    page.goto(app_url)
    page.get_by_role("button", name="Log in").click(timeout=timeout)
    page.wait_for_url(lambda u: "/oauth2/authorize?" in u, timeout=timeout)
    page.locator('input[name="sub"]').fill(subject)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(lambda u: u.rstrip("/") == app_url.rstrip("/"), timeout=timeout)
    page.get_by_role("button", name="Log out").wait_for(timeout=timeout)
