"""Class mode's check on served files (ui/private_files.py): a download goes to the sign-in that made it, and only
through the course's one download button. tests/e2e/test_two_servers_browser.py walks the same in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from streamlit.web.server.server_util import get_cookie_secret
from streamlit.web.server.starlette.starlette_app_utils import create_signed_value
from streamlit.web.server.starlette.starlette_websocket import USER_COOKIE_NAME

from ui import auth, private_files

ROOT = Path(__file__).resolve().parents[2]


def _client(monkeypatch: pytest.MonkeyPatch, class_mode: bool) -> TestClient:
    monkeypatch.setattr(auth, "class_mode", lambda: class_mode)
    app = Starlette(routes=[Route("/media/{file_id}", lambda request: PlainTextResponse("the file")),
                            Route("/lesson-1", lambda request: PlainTextResponse("a page"))],
                    middleware=[Middleware(private_files.OwnFilesOnly)])
    return TestClient(app, base_url="http://127.0.0.1")


def _signed_in(subject: str) -> dict[str, str]:
    """The Cookie header of a browser Streamlit signed in as `subject` (signed with the server's cookie secret)."""
    payload = json.dumps({"is_logged_in": True, "sub": subject, "origin": "http://127.0.0.1"})
    signed = create_signed_value(get_cookie_secret(), USER_COOKIE_NAME, payload).decode("latin-1")
    return {"Cookie": f"{USER_COOKIE_NAME}={signed}"}


def test_a_file_is_served_to_the_sign_in_it_was_made_for_and_to_nobody_else(monkeypatch) -> None:
    client = _client(monkeypatch, class_mode=True)
    file_id = private_files.file_id_of('{"learner": "Alice"}', "application/json", "progress.json")
    private_files.record(file_id, "alice")
    url = f"/media/{file_id}.json"
    assert client.get(url, headers=_signed_in("alice")).text == "the file"
    for headers in (_signed_in("bob"), {}, {"Cookie": f"{USER_COOKIE_NAME}=forged"}):
        refused = client.get(url, headers=headers)
        assert refused.status_code == 403 and "another signed-in learner" in refused.text
    assert client.get("/media/never-recorded.bin", headers=_signed_in("alice")).status_code == 403  # fail closed
    assert client.get("/lesson-1").text == "a page"  # only /media/ is checked


def test_one_learner_mode_serves_files_as_streamlit_does(monkeypatch) -> None:
    assert _client(monkeypatch, class_mode=False).get("/media/anything.bin").text == "the file"


def test_the_id_recorded_is_the_one_streamlits_media_store_gives() -> None:
    from streamlit.runtime.media_file_storage import MediaFileKind
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    storage = MemoryMediaFileStorage("/media")
    for data in ("a,b\n1,2\n", b"\x00\x01weights"):
        stored = storage.load_and_get_id(data.encode() if isinstance(data, str) else data, "text/csv",
                                         MediaFileKind.DOWNLOADABLE, "table.csv")
        assert private_files.file_id_of(data, "text/csv", "table.csv") == stored


def test_every_download_button_goes_through_the_check() -> None:
    direct = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "ui").rglob("*.py") if p.name != "private_files.py"
              for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
              if re.search(r"(?<!private_files)\.download_button\(", line)]
    assert direct == [], f"call private_files.download_button, not st.download_button, at {direct}"
