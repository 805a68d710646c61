"""Class mode in a real browser, signing in for real, on two course servers set up as docs/deploy.md says: one
PostgreSQL database, one runs folder, one secrets.toml (the identity provider, `redirect_uri` with Streamlit's
`{port}`, one cookie secret) on two ports. A local OpenID Connect provider (oidc-provider-mock on 127.0.0.1,
bench/identity_provider.py) signs people in: Chromium presses Log in, types the subject into the provider's form
and presses Authorize. Every request not to 127.0.0.1 is aborted (the provider's page links a stylesheet on a CDN).

Before sign-in only the sign-in page shows, whatever the address. Alice answers on the first server; Bob, on the
second, sees nothing of hers by any route the app offers (sidebar, addresses, query parameters, the instructor's
pages), and the link of his own download serves no one else; Alice signs in on the second and finds her answer and
her place there; the instructor sees both on the roster."""

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
from tests.postgres import postgres_schema

if importlib.util.find_spec("oidc_provider_mock") is None:  # looked up, not imported: the provider runs as a child
    pytest.skip("oidc-provider-mock is installed by `make test` (requirements-dev.txt)", allow_module_level=True)
pytestmark = pytest.mark.browser
LESSON2 = "how-llms-are-trained"
PEOPLE = {"alice": ("Alice Adams", "alice@example.edu"), "bob": ("Bob Brown", "bob@example.edu"),
          "prof": ("Pat Professor", "prof@example.edu")}


@pytest.fixture
def class_on_two_servers(tmp_path):
    with postgres_schema() as url:
        idp = IdentityProvider(tmp_path / "idp.log").start()
        servers: list[Server] = []
        try:
            for sub, (name, email) in PEOPLE.items():
                idp.add_user(sub, name=name, email=email)
            secrets = idp.secrets_toml(tmp_path / "secrets.toml", "http://127.0.0.1:{port}",
                                       instructors=("prof@example.edu",))
            env = {paths.DATABASE_URL_VAR: url, paths.RUNS_VAR: str(tmp_path / "runs"),
                   paths.UPLOADS_VAR: str(tmp_path / "uploads")}
            for i in (1, 2):
                servers.append(Server(tmp_path / f"unused-{i}.sqlite3", tmp_path / f"streamlit-{i}.log", env=env,
                                      secrets=secrets))
                servers[-1].start()
            yield servers, url
        finally:
            for server in servers:
                server.stop()
            idp.stop()


def _context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    aborted = only_this_machine(context)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page, aborted


def _answer_first_single_choice(page, url: str):
    entry = load_course().entry(LESSON2)
    q = next(q for q in entry.quiz.questions if q.type == "single_choice")
    right = next(o for o in q.options if o.id == q.answer)
    page.goto(f"{url}/lesson-2")
    page.get_by_text(entry.lesson.cards[0].title).first.wait_for()
    for card in entry.lesson.cards[1:]:
        page.locator(f".st-key-lesson-{LESSON2}-next button").click()
        page.get_by_text(card.title).first.wait_for()
    page.locator(f".st-key-lesson-{LESSON2}-to-quiz button").click()
    box = page.locator(f".st-key-qbox-{entry.quiz.id}-{q.id}")
    box.get_by_text(right.text).click()
    box.get_by_role("button", name="Check answer").click()
    box.locator('[data-testid="stAlertContentSuccess"]').wait_for()
    return entry, q, right


def test_a_class_on_two_servers_signs_in_and_each_learner_sees_only_their_own(class_on_two_servers, browser) -> None:
    (one, two), url = class_on_two_servers
    nobody, aborted = _context(browser)  # not signed in: the sign-in page, whatever address is asked for
    for address in ("/", "/lesson-1", "/progress", "/class-roster", "/?learner_id=1"):
        nobody.goto(one.url + address)
        nobody.get_by_role("button", name="Log in").wait_for()
        assert nobody.get_by_text("Card 1 /").count() == 0 and nobody.get_by_text("Class roster").count() == 0

    alice, aborted_a = _context(browser)
    sign_in(alice, one.url, "alice")
    alice.get_by_text("Signed in as:").first.wait_for()
    assert alice.get_by_text("Learner profile").count() == 0  # no picker in class mode
    entry, q, right = _answer_first_single_choice(alice, one.url)

    bob, aborted_b = _context(browser)
    sign_in(bob, two.url, "bob")  # Bob on the other server: nothing of Alice's, by any route
    bob.get_by_text("Bob Brown").first.wait_for()
    assert bob.get_by_text("In progress · at the quiz").count() == 0  # Alice's place is not his
    for address in ("/?learner_id=1", "/?learner=alice", "/lesson-2?learner_id=1"):
        bob.goto(two.url + address)
        settled(bob)
        assert bob.get_by_text("Alice Adams").count() == 0 and bob.get_by_text("alice@example.edu").count() == 0
    bob.goto(f"{two.url}/class-roster")  # an instructor's page: not there for a learner
    settled(bob)
    assert bob.get_by_role("heading", name="Class roster").count() == 0
    bob.goto(f"{two.url}/progress")
    with bob.expect_download() as download:
        bob.get_by_role("button", name="Download my progress (JSON)").click()
    exported = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert exported["learner"] == "Bob Brown" and exported["answers"] == [] and exported["positions"] == {}
    bobs_file = download.value.url  # served under /media/ to Bob's sign-in alone (ui/private_files.py)
    assert "/media/" in bobs_file and bob.context.request.get(bobs_file).status == 200
    assert nobody.context.request.get(bobs_file).status == 403

    # The other server. Behind a proxy both servers share one address, so one sign-in serves both; here they are two
    # ports, two origins to Streamlit's sign-in cookie, so Alice signs in there too.
    sign_in(alice, two.url, "alice")
    alice.get_by_text("Alice Adams").first.wait_for()
    alice.get_by_text("In progress · at the quiz").first.wait_for()
    alice.goto(f"{two.url}/lesson-2")
    box = alice.locator(f".st-key-qbox-{entry.quiz.id}-{q.id}")
    box.locator('[data-testid="stAlertContentSuccess"]').wait_for()
    assert right.text in box.locator('[data-testid="stRadioOption"][data-selected="true"]').inner_text()
    settled(alice)
    refused = alice.context.request.get(bobs_file)  # signed in on Bob's server, as herself: his file is not hers
    assert refused.status == 403 and "another signed-in learner" in refused.text()

    prof, aborted_p = _context(browser)
    sign_in(prof, two.url, "prof")
    prof.get_by_text("Instructor:").first.wait_for()
    prof.goto(f"{two.url}/class-roster")
    prof.get_by_role("heading", name="Class roster").first.wait_for()
    prof.get_by_text("2 learners, most recently active first", exact=False).first.wait_for()
    with prof.expect_download() as roster_csv:  # the instructor's own download: served to the instructor
        prof.locator(".st-key-roster-csv button").click()
    assert "Alice Adams" in roster_csv.value.path().read_text(encoding="utf-8")
    assert bob.context.request.get(roster_csv.value.url).status == 403
    prof.goto(f"{two.url}/class-questions")
    prof.get_by_role("heading", name="Question by question").first.wait_for()

    store = ProgressStore(url)  # one database holds it all, and neither server made a SQLite file of its own
    members = {m.name: m for m in store.members()}
    assert set(members) == {"Alice Adams", "Bob Brown", "Pat Professor"}  # the roster above leaves the instructor out
    assert store.quiz_records(members["Alice Adams"].id, entry.quiz.id)[q.id].last.correct
    assert store.answered(members["Bob Brown"].id) == set()
    store.close()
    assert not any(p.exists() for p in (one.db, two.db))
    for seen in (aborted, aborted_a, aborted_b, aborted_p):
        assert all("127.0.0.1" not in u for u in seen)
