"""The key Job's program, run for real with Python against a stand-in LiteLLM proxy.

The stand-in answers as LiteLLM 1.106.2 does (litellm/proxy/management_endpoints/
key_management_endpoints.py, proxy/utils.py): /key/info is 404 for an unknown key and 200 with
`info.status` ("deleted" for an archived key); /key/generate refuses a caller-chosen key without
`sk-` and, for a key that exists, changes nothing (an upsert with an empty update); /key/update
merges the fields given. Every body the script sends must consist of fields of LiteLLM's own
request models (GenerateKeyRequest, UpdateKeyRequest), which otherwise ignore unknown fields.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import pytest

from components.litellm_keys import key_script, key_settings, settings_json
from tests.stand_in import JsonHandler, LoopbackServer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download at import
from litellm.proxy._types import GenerateKeyRequest, UpdateKeyRequest

MASTER = "sk-master-" + "m" * 40
CLIENT = "sk-" + "c" * 48


class FakeLiteLlm:
    def __init__(self):
        self.keys: dict[str, dict] = {}
        self.deleted: set[str] = set()
        self.by_hash = {hashlib.sha256(CLIENT.encode()).hexdigest(): CLIENT}
        self.bodies: list[tuple[str, dict]] = []
        self.urls: list[str] = []
        self.server = LoopbackServer(self._handler())
        self.url = self.server.url

    def _handler(self):
        proxy = self

        class Handler(JsonHandler):
            def _authorized(self):
                return self.headers.get("Authorization") == f"Bearer {MASTER}"

            def do_GET(self):
                proxy.urls.append(self.path)
                path = urlparse(self.path)
                if path.path == "/health/readiness":
                    return self._reply(200, {"status": "healthy"})
                if not self._authorized():
                    return self._reply(401)
                if path.path == "/key/info":
                    # LiteLLM hashes an `sk-` key and takes anything else as its sha256.
                    key = proxy.by_hash.get(parse_qs(path.query)["key"][0], "not a stored hash")
                    if key in proxy.deleted:
                        return self._reply(200, {"key": key, "info": {"status": "deleted"}})
                    if key not in proxy.keys:
                        return self._reply(404, {"detail": "Key not found in database"})
                    return self._reply(200, {"key": key, "info": {**proxy.keys[key], "status": "active"}})
                return self._reply(404)

            def do_POST(self):
                path = urlparse(self.path).path
                if not self._authorized():
                    return self._reply(401)
                body = self._body()
                proxy.bodies.append((path, body))
                key = body.get("key")
                if path == "/key/generate":
                    if not key.startswith("sk-"):
                        return self._reply(400, {"detail": "must start with 'sk-'"})
                    if key not in proxy.keys:  # upsert: create, else leave it as it is
                        proxy.keys[key] = {k: v for k, v in body.items() if k != "key"}
                    proxy.deleted.discard(key)
                    return self._reply(200, {"key": key})
                if path == "/key/update":
                    if key not in proxy.keys:
                        return self._reply(404)
                    proxy.keys[key].update({k: v for k, v in body.items() if k != "key"})
                    return self._reply(200, {"key": key})
                return self._reply(404)

        return Handler


@pytest.fixture
def litellm():
    fake = FakeLiteLlm()
    yield fake
    fake.server.shutdown()


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("job") / "client-key.py"
    path.write_text(key_script())
    return path


def _run(script, url, *, rpm=None, models=("chat", "embed")):
    settings = settings_json(key_settings(models=list(models), rpm_limit=rpm, tpm_limit=None,
                                          max_parallel_requests=None))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env={"LITELLM_URL": url, "LITELLM_MASTER_KEY": MASTER, "CLIENT_KEY": CLIENT,
             "KEY_SETTINGS": settings, "WAIT_SECONDS": "0.5", "POLL_SECONDS": "0.1"})


def test_the_key_is_generated_with_only_its_models(litellm, script):
    result = _run(script, litellm.url, rpm=600)
    assert result.returncode == 0, result.stderr
    stored = litellm.keys[CLIENT]
    assert stored["models"] == ["chat", "embed"] and stored["rpm_limit"] == 600
    assert stored["metadata"]["owner"] == "anythingllm"


def test_a_rerun_converges_limits_through_update(litellm, script):
    """Generate would silently keep the old limits (an upsert): an existing key is updated."""
    assert _run(script, litellm.url, rpm=600).returncode == 0
    result = _run(script, litellm.url, rpm=120)
    assert result.returncode == 0, result.stderr
    assert litellm.keys[CLIENT]["rpm_limit"] == 120
    assert [path for path, _ in litellm.bodies] == ["/key/generate", "/key/update"]


def test_a_lifted_limit_is_cleared(litellm, script):
    """/key/update merges only what is sent: a limit removed from the settings is sent as null."""
    assert _run(script, litellm.url, rpm=600).returncode == 0
    assert _run(script, litellm.url, rpm=None).returncode == 0
    assert litellm.keys[CLIENT]["rpm_limit"] is None and litellm.keys[CLIENT]["blocked"] is False


def test_the_raw_key_never_goes_into_a_url(litellm, script):
    assert _run(script, litellm.url).returncode == 0
    assert any(url.startswith("/key/info?") for url in litellm.urls)
    assert all(CLIENT not in url for url in litellm.urls)


def test_a_deleted_key_is_generated_again(litellm, script):
    litellm.deleted.add(CLIENT)
    result = _run(script, litellm.url)
    assert result.returncode == 0, result.stderr
    assert "generated" in result.stdout and CLIENT in litellm.keys


def test_every_body_uses_litellms_own_field_names(litellm, script):
    assert _run(script, litellm.url, rpm=60).returncode == 0
    assert _run(script, litellm.url, rpm=30).returncode == 0
    models = {"/key/generate": GenerateKeyRequest, "/key/update": UpdateKeyRequest}
    for path, body in litellm.bodies:
        assert set(body) <= set(models[path].model_fields), (path, body)
        models[path](**body)


def test_a_gateway_that_never_gets_ready_fails_the_job(script):
    result = _run(script, "http://127.0.0.1:9")
    assert result.returncode == 1 and "was not ready in time" in result.stderr
