"""The keys file and `mlapi tokens`."""

import json
import os

import pytest

from mlapi import auth

from .conftest import run_cli


def test_create_stores_only_a_hash(tmp_path):
    path = tmp_path / "keys.json"
    token = auth.create(path, "ci-bot", ["predict", "feedback"])
    assert token.startswith("mlapi_") and len(token) > 40
    text = path.read_text()
    assert token not in text and auth.digest(token) in text
    assert json.loads(text)["keys"][0]["scopes"] == ["predict", "feedback"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("name, scopes, message", [
    ("x", ["root"], "scopes must be some of"),
    ("x", [], "scopes must be some of"),
    ("bad name!", ["predict"], "letters, digits"),
])
def test_create_rejects_bad_input(tmp_path, name, scopes, message):
    with pytest.raises(auth.KeysFileError, match=message):
        auth.create(tmp_path / "k.json", name, scopes)


def test_duplicate_names_and_unknown_revoke(tmp_path):
    path = tmp_path / "k.json"
    auth.create(path, "a", ["predict"])
    with pytest.raises(auth.KeysFileError, match="exists"):
        auth.create(path, "a", ["predict"])
    with pytest.raises(auth.KeysFileError, match="no key named 'b'"):
        auth.revoke(path, "b")


def test_keyring_follows_the_file(tmp_path):
    path = tmp_path / "k.json"
    ring = auth.KeyRing(path)
    assert ring.find("anything") is None  # no file yet: no keys
    token = auth.create(path, "a", ["predict"])
    assert ring.find(token).name == "a"
    assert ring.find(token + "x") is None
    auth.revoke(path, "a")
    assert ring.find(token) is None


def test_a_corrupt_keys_file_is_an_error(tmp_path):
    path = tmp_path / "k.json"
    path.write_text("{not json")
    with pytest.raises(auth.KeysFileError, match="not a valid keys file"):
        auth.KeyRing(path).find("t")


def test_cli_prints_only_the_token(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")},
           "MLAPI_API_KEYS_FILE": str(tmp_path / "keys.json")}
    done = run_cli("tokens", "create", "--name", "web", "--scopes", "predict", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlapi_")
    listed = run_cli("tokens", "list", env=env)
    assert listed.stdout.startswith("web\tpredict\t") and lines[0] not in listed.stdout
    assert run_cli("tokens", "revoke", "web", env=env).returncode == 0
    assert run_cli("tokens", "list", env=env).stdout == ""
    bad = run_cli("tokens", "create", "--name", "x", "--scopes", "root", env=env)
    assert bad.returncode == 2 and "scopes must be some of" in bad.stderr


def test_cli_without_a_keys_file_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")}
    done = run_cli("tokens", "list", env=env)
    assert done.returncode == 2 and "MLAPI_API_KEYS_FILE" in done.stderr
