"""The CLI's failures, told in one place (cli.FAILURES): exit codes and messages, with the real
Redis registry and feedback database where a command reaches them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mlapi import cli
from mlapi.auth import KeysFileError
from mlapi.feedback.db import CorrectionRefused, UnknownCorrection
from mlapi.model.kinds import KINDS
from mlapi.redis_store import NotInRegistry, StoreUnavailable

from .conftest import run_cli


@pytest.mark.parametrize("exc, told", [
    (cli.UsageError("set X"), (2, "")),
    (KeysFileError("bad file"), (2, "")),
    (NotInRegistry.version("v1"), (2, "")),
    (UnknownCorrection("no correction 3"), (2, "")),
    (CorrectionRefused("accepted already"), (2, "")),
    (StoreUnavailable("Redis down"), (1, "")),
    (KeyError("created"), None),  # a bug, not a user's mistake: it must stay a traceback
    (ValueError("anything"), None),
])
def test_each_failure_has_one_exit_code(exc, told):
    assert cli.failure(exc) == told


def test_a_failure_is_told_on_stderr_and_a_bug_is_raised(capsys):
    assert cli.run_command("models", lambda: (_ for _ in ()).throw(NotInRegistry.version("v1"))) == 2
    assert capsys.readouterr().err == \
        "mlapi models: no version 'v1' in the registry (see `mlapi models list`)\n"
    with pytest.raises(KeyError):
        cli.run_command("models", lambda: {}["created"])


def test_the_kinds_are_the_pipelines_and_help_loads_no_model_library():
    from mlapi.model import pipeline

    assert pipeline.KINDS is KINDS and pipeline.DEFAULT_KIND == KINDS[0]
    code = "import sys; from mlapi import cli; cli.parser(); print('sklearn' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "False", run.stderr


def env_of(settings, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")}
    return {**env, **settings.as_env(), **extra}


@pytest.mark.integration
def test_an_unknown_version_names_itself(base_settings):
    done = run_cli("models", "promote", "no-such-version", env=env_of(base_settings))
    assert done.returncode == 2
    assert "mlapi models: no version 'no-such-version' in the registry" in done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("args, fragment", [
    (("feedback", "confirm", "999999"), "mlapi feedback: no correction 999999"),
])
def test_feedback_failures_exit_2(base_settings, tmp_path, args, fragment):
    env = env_of(base_settings, MLAPI_FEEDBACK_DB=f"sqlite:///{tmp_path / 'f.db'}")
    done = run_cli(*args, env=env)
    assert (done.returncode, fragment in done.stderr) == (2, True), done.stderr


def test_commands_that_need_redis_say_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")}
    env["MLAPI_STATE_DIR"] = str(tmp_path)  # no stack.json there: nothing to attach to
    done = run_cli("models", "list", env=env)
    assert done.returncode == 2
    assert "mlapi models: set MLAPI_REDIS_URL, or start `make run` first" in done.stderr
