"""The admin Job's program, run for real with Node.js against a stand-in AnythingLLM.

The stand-in implements the endpoints the Job uses as AnythingLLM's source has them
(Mintplex-Labs/anything-llm, `pg` branch at 5514d7c "pg-1.16.0"):
- server/utils/middleware/validatedRequest.js: multi-user mode first (a user's JWT); in single-
  user mode every request passes unless AUTH_TOKEN and JWT_SECRET are set, then a token from
  /request-token is required;
- server/endpoints/system.js: GET /system/multi-user-mode (no auth), POST /request-token (single-
  user: {password} -> 200 {valid, token} or 401; multi-user: {username, password} -> always 200
  with valid true/false), POST /system/enable-multi-user ([validatedRequest]; 200
  {success:false} when already on);
- server/endpoints/admin.js: GET /admin/system-preferences-for (`text_splitter_chunk_size` falls
  back to the embedder's limit), POST /admin/system-preferences; both admin only.
"""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import parse_qs, urlparse

import pytest

from components.anythingllm_admin import admin_job_name, admin_script
from tests.stand_in import JsonHandler, LoopbackServer

AUTH_TOKEN = "t" * 48
EMBEDDER_LIMIT = 6144


class FakeAnythingLlm:
    def __init__(self):
        self.multi_user = False
        self.users: dict[str, str] = {}
        self.settings: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.ignore_writes = False
        self.server = LoopbackServer(self._handler())
        self.url = self.server.url

    def _handler(self):
        app = self

        class Handler(JsonHandler):
            def _token(self):
                return (self.headers.get("Authorization") or " ").split(" ")[1]

            def _validated(self):
                token = self._token()
                if app.multi_user:
                    return token.startswith("user:") and token[5:] in app.users
                return token == "single-user-session"

            def do_GET(self):
                path = urlparse(self.path)
                app.calls.append(("GET", path.path))
                if path.path == "/api/ping":
                    return self._reply(200, {"online": True})
                if path.path == "/api/system/multi-user-mode":
                    return self._reply(200, {"multiUserMode": app.multi_user})
                if path.path == "/api/admin/system-preferences-for":
                    if not (app.multi_user and self._validated()):
                        return self._reply(401, {})
                    labels = parse_qs(path.query)["labels"][0].split(",")
                    settings = {label: app.settings.get(label) for label in labels}
                    settings["text_splitter_chunk_size"] = (
                        app.settings.get("text_splitter_chunk_size") or EMBEDDER_LIMIT)
                    return self._reply(200, {"settings": settings})
                return self._reply(404, {})

            def do_POST(self):
                path = urlparse(self.path).path
                app.calls.append(("POST", path))
                body = self._body()
                if path == "/api/request-token":
                    if app.multi_user:
                        valid = app.users.get(body.get("username")) == body.get("password")
                        return self._reply(200, {"valid": valid, "message": None if valid else "[002]",
                                                 "token": f"user:{body['username']}" if valid else None})
                    if body.get("password") != AUTH_TOKEN:
                        return self._reply(401, {"valid": False, "token": None})
                    return self._reply(200, {"valid": True, "token": "single-user-session"})
                if path == "/api/system/enable-multi-user":
                    if not self._validated():
                        return self._reply(401, {})
                    if app.multi_user:
                        return self._reply(200, {"success": False,
                                                 "error": "Multi-user mode is already enabled."})
                    if len(body.get("password", "")) < 8:
                        return self._reply(400, {"success": False, "error": "password too short"})
                    app.users[body["username"]] = body["password"]
                    app.multi_user = True
                    return self._reply(200, {"success": True, "error": None})
                if path == "/api/admin/system-preferences":
                    if not (app.multi_user and self._validated()):
                        return self._reply(401, {})
                    if not app.ignore_writes:
                        app.settings.update({key: str(value) for key, value in body.items()})
                    return self._reply(200, {"success": True, "error": None})
                return self._reply(404, {})

        return Handler


@pytest.fixture
def anythingllm():
    fake = FakeAnythingLlm()
    yield fake
    fake.server.shutdown()


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("job") / "admin-bootstrap.mjs"
    path.write_text(admin_script())
    return path


def _run(script, url, *, auth_token=AUTH_TOKEN, password="p" * 32, chunk_size=1000, overlap=20):
    node = shutil.which("node")
    assert node, "Node.js runs the Job's program in the AnythingLLM image; install it to test it"
    return subprocess.run(
        [node, str(script)], capture_output=True, text=True, timeout=60,
        env={"ANYTHINGLLM_URL": url, "AUTH_TOKEN": auth_token, "ADMIN_USERNAME": "admin",
             "ADMIN_PASSWORD": password, "CHUNK_SIZE": str(chunk_size),
             "CHUNK_OVERLAP": str(overlap), "WAIT_SECONDS": "0.5", "POLL_SECONDS": "0.1"})


def test_first_run_turns_multi_user_mode_on_and_sets_the_splitter(anythingllm, script):
    result = _run(script, anythingllm.url)
    assert result.returncode == 0, result.stderr
    assert anythingllm.multi_user and anythingllm.users == {"admin": "p" * 32}
    assert anythingllm.settings == {"text_splitter_chunk_size": "1000", "text_splitter_chunk_overlap": "20"}


def test_a_second_run_changes_nothing(anythingllm, script):
    assert _run(script, anythingllm.url).returncode == 0
    anythingllm.calls.clear()
    result = _run(script, anythingllm.url)
    assert result.returncode == 0, result.stderr
    assert "nothing to change" in result.stdout
    writes = [call for call in anythingllm.calls if call[0] == "POST" and call[1] != "/api/request-token"]
    assert writes == []


def test_changed_settings_are_converged(anythingllm, script):
    assert _run(script, anythingllm.url).returncode == 0
    result = _run(script, anythingllm.url, chunk_size=800)
    assert result.returncode == 0, result.stderr
    assert anythingllm.settings["text_splitter_chunk_size"] == "800"


def test_an_unset_overlap_is_written_even_when_it_is_zero(anythingllm, script):
    """Unset, AnythingLLM reports null (and its splitter falls back to 20): 0 must be written."""
    result = _run(script, anythingllm.url, overlap=0)
    assert result.returncode == 0, result.stderr
    assert anythingllm.settings["text_splitter_chunk_overlap"] == "0"


def test_a_write_that_did_not_stick_fails_the_job(anythingllm, script):
    """AnythingLLM answers success even when it stored nothing: the Job reads the values back."""
    assert _run(script, anythingllm.url).returncode == 0
    anythingllm.ignore_writes = True
    result = _run(script, anythingllm.url, chunk_size=900)
    assert result.returncode == 1 and "text_splitter_chunk_size is 1000 after writing 900" in result.stderr


def test_an_admin_whose_password_changed_in_the_ui_is_left_alone(anythingllm, script):
    assert _run(script, anythingllm.url).returncode == 0
    anythingllm.users["admin"] = "changed-in-the-ui"
    result = _run(script, anythingllm.url, chunk_size=700)
    assert result.returncode == 0, result.stderr
    assert "cannot log in" in result.stdout
    assert anythingllm.settings["text_splitter_chunk_size"] == "1000"


def test_a_refused_auth_token_fails_the_job(anythingllm, script):
    result = _run(script, anythingllm.url, auth_token="wrong")
    assert result.returncode == 1
    assert "AUTH_TOKEN was refused" in result.stderr
    assert not anythingllm.multi_user


def test_an_unreachable_instance_fails_after_the_wait(script):
    result = _run(script, "http://127.0.0.1:9")
    assert result.returncode == 1 and "did not answer /api/ping" in result.stderr


def test_job_name_follows_what_it_does():
    assert admin_job_name("a", "b") == admin_job_name("a", "b") != admin_job_name("a", "c")
    assert admin_job_name("a").startswith("anythingllm-admin-") and len(admin_job_name("a")) <= 63
