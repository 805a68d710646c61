"""Class mode in a real browser, signing in for real: a local OpenID Connect provider (oidc-provider-mock on
127.0.0.1, bench/identity_provider.py), the course server reading its `[auth]` from a secrets.toml of the test's own,
and Chromium pressing Log in, typing the subject into the provider's form and pressing Authorize. Every request not
to 127.0.0.1 is aborted (the provider's page links a stylesheet on a public CDN).

Two learners and an instructor: before sign-in only the sign-in page shows, whatever the address; each learner sees
only their own progress, by every route the app offers (sidebar, addresses, query parameters, their download); a
learner cannot open the instructor's pages; the instructor sees both learners on the roster."""

from __future__ import annotations

import importlib.util
import json

import pytest

import paths
from bench.app_server import Server
from bench.identity_provider import IdentityProvider, only_this_machine, sign_in
from course.loader import load_course
from course.progress import ProgressStore
from tests.e2e.conftest import settled

if importlib.util.find_spec("oidc_provider_mock") is None:  # looked up, not imported: the provider runs as a child
    pytest.skip("oidc-provider-mock is installed by `make test` (requirements-dev.txt)", allow_module_level=True)
pytest.importorskip("authlib", reason="Authlib (st.login's dependency) is installed by `make test`")
pytestmark = pytest.mark.browser

PEOPLE = {"alice": ("Alice Adams", "alice@example.edu"), "bob": ("Bob Brown", "bob@example.edu"),
          "prof": ("Pat Professor", "prof@example.edu")}


@pytest.fixture
def class_server(tmp_path, browser):
    idp = IdentityProvider(tmp_path / "idp.log").start()
    server = None
    try:
        for sub, (name, email) in PEOPLE.items():
            idp.add_user(sub, name=name, email=email)
        server = Server(tmp_path / "progress.sqlite3", tmp_path / "streamlit.log",
                        env={paths.RUNS_VAR: str(tmp_path / "runs"), paths.UPLOADS_VAR: str(tmp_path / "uploads")})
        server.secrets = idp.secrets_toml(tmp_path / "secrets.toml", server.url, instructors=("prof@example.edu",))
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        idp.stop()


def _person(browser, server: Server, sub: str | None):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    aborted = only_this_machine(context)
    page = context.new_page()
    page.set_default_timeout(60_000)
    if sub is not None:
        sign_in(page, server.url, sub)
        settled(page)
    return page, aborted


def test_two_learners_and_an_instructor_sign_in_and_see_only_what_is_theirs(class_server: Server, browser) -> None:
    server = class_server
    lesson1 = load_course().lessons[0]

    # Nobody signed in: the sign-in page, whatever address is asked for.
    page, aborted = _person(browser, server, None)
    for address in ("/", "/lesson-1", "/progress", "/class-roster", "/?learner_id=1"):
        page.goto(server.url + address)
        page.get_by_role("button", name="Log in").wait_for()
        assert page.get_by_text("Card 1 /").count() == 0 and page.get_by_text("Class roster").count() == 0

    # Alice signs in and moves on in lesson 1.
    alice, aborted_a = _person(browser, server, "alice")
    alice.get_by_text("Signed in as:").first.wait_for()
    assert alice.get_by_text("alice@example.edu").count() >= 1
    assert alice.get_by_text("Learner profile").count() == 0  # no picker in class mode
    alice.goto(f"{server.url}/lesson-1")
    alice.get_by_text(f"Card 1 / {len(lesson1.cards)}", exact=True).first.wait_for()
    alice.locator(f".st-key-lesson-{lesson1.id}-next button").click()
    alice.get_by_text(f"Card 2 / {len(lesson1.cards)}", exact=True).first.wait_for()

    # Bob signs in: nothing of Alice's, by any route.
    bob, aborted_b = _person(browser, server, "bob")
    bob.get_by_text("Bob Brown").first.wait_for()
    bob.goto(f"{server.url}/lesson-1")
    bob.get_by_text(f"Card 1 / {len(lesson1.cards)}", exact=True).first.wait_for()  # his own place, not hers
    for address in ("/?learner_id=1", "/?learner=alice", "/lesson-1?learner_id=1"):
        bob.goto(server.url + address)
        settled(bob)
        assert bob.get_by_text("Alice Adams").count() == 0 and bob.get_by_text("alice@example.edu").count() == 0
    bob.goto(f"{server.url}/class-roster")  # an instructor's page: not there for a learner
    settled(bob)
    assert bob.get_by_role("heading", name="Class roster").count() == 0
    assert bob.get_by_text("Instructor", exact=True).count() == 0
    bob.goto(f"{server.url}/progress")
    with bob.expect_download() as download:
        bob.get_by_role("button", name="Download my progress (JSON)").click()
    exported = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert exported["learner"] == "Bob Brown" and exported["positions"] == {}

    store = ProgressStore(server.db)
    members = {m.name: m for m in store.members()}
    assert set(members) == {"Alice Adams", "Bob Brown"} and all(m.signed_in for m in members.values())
    assert store.card(members["Alice Adams"].id, lesson1.id) == 1 and store.card(members["Bob Brown"].id, lesson1.id) == 0
    store.close()

    # The instructor sees both on the roster.
    prof, aborted_p = _person(browser, server, "prof")
    prof.get_by_text("Instructor:").first.wait_for()
    prof.goto(f"{server.url}/class-roster")
    prof.get_by_role("heading", name="Class roster").first.wait_for()
    roster = prof.locator('[data-testid="stDataFrame"]').first
    roster.wait_for()
    prof.get_by_text("2 learners, most recently active first", exact=False).first.wait_for()
    prof.goto(f"{server.url}/class-questions")
    prof.get_by_role("heading", name="Question by question").first.wait_for()

    for seen in (aborted, aborted_a, aborted_b, aborted_p):  # whatever was stopped was bound off the machine
        assert all("127.0.0.1" not in url for url in seen)
