"""`mlapi run`'s first start: the multilingual model trained in the background, then stored
in the real registry and promoted only when it is not worse on English."""

from __future__ import annotations

import json
import os

import pytest

from mlapi.local.upgrade import MULTILINGUAL, Upgrade
from mlapi.model import artifact
from mlapi.redis_store import Registry

from .conftest import make_settings, wait_for

pytestmark = pytest.mark.integration


def upgrade_for(settings, tmp_path) -> Upgrade:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")}
    env.update(settings.as_env())
    # A small sample keeps the test quick; the full run is `mlapi run`'s business.
    return Upgrade(settings, tmp_path / "models", tmp_path / "train.log", env,
                   train_args=("--limit", "1500"))


def test_the_multilingual_model_is_trained_stored_and_promoted(redis_server, kafka_server,
                                                               model_path, tmp_path):
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    registry = Registry(settings)
    try:
        fast = artifact.read_metadata(model_path)
        # A 1,500-row multilingual model scores below the test's fast one on English; record
        # the champion as a weak one, so the rule under test is the promotion, not the score.
        registry.add({**fast, "metrics": {**fast["metrics"], "macro_f1": 0.3}},
                     model_path.read_bytes())
        registry.promote(fast["version"])
        upgrade = upgrade_for(settings, tmp_path)
        upgrade.start()
        assert upgrade.poll() is None  # still training
        line = wait_for(upgrade.poll, 600, "the background training to end")
        assert "promoted it" in line, (line, (tmp_path / "train.log").read_text()[-2000:])
        meta = artifact.read_metadata(tmp_path / "models" / MULTILINGUAL)
        assert meta["kind"] == "multilingual" and registry.champion() == meta["version"]
        assert upgrade.poll() is None  # said once
    finally:
        registry.close()


def test_a_worse_model_is_stored_but_not_promoted(redis_server, kafka_server, model_path,
                                                  tmp_path):
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    registry = Registry(settings)
    try:
        fast = artifact.read_metadata(model_path)
        registry.add({**fast, "metrics": {**fast["metrics"], "macro_f1": 0.99}},
                     model_path.read_bytes())
        registry.promote(fast["version"])
        upgrade = upgrade_for(settings, tmp_path)
        upgrade.start()
        line = wait_for(upgrade.poll, 600, "the background training to end")
        assert "kept the champion" in line and registry.champion() == fast["version"]
        assert artifact.read_metadata(tmp_path / "models" / MULTILINGUAL)["version"] in \
            [m["version"] for m in registry.versions()]
    finally:
        registry.close()


def test_a_kind_promoted_meanwhile_is_kept(redis_server, kafka_server, model_path, tmp_path):
    # A user who pushes an encoder model during the first `mlapi run` keeps it, even though
    # the multilingual one scores higher on the corpus's English tweets. The training itself
    # is the tests above; here its output is an archive put where it would write one.
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    registry = Registry(settings)
    try:
        fast = artifact.read_metadata(model_path)
        chosen = {**fast, "kind": "encoder", "metrics": {**fast["metrics"], "macro_f1": 0.3}}
        registry.add(chosen, model_path.read_bytes())
        registry.promote(fast["version"])
        upgrade = upgrade_for(settings, tmp_path)
        trained = upgrade.output
        trained.parent.mkdir(parents=True)
        trained.write_bytes(model_path.read_bytes())
        meta = {**fast, "version": "trained-meanwhile", "kind": "multilingual"}
        artifact.meta_path(trained).write_text(json.dumps(meta))
        line = upgrade.promote(1.0)
        assert "the encoder model promoted meanwhile" in line, line
        assert registry.champion() == fast["version"]
        assert "trained-meanwhile" in [m["version"] for m in registry.versions()]
    finally:
        registry.close()


def test_a_failed_training_says_where_its_log_is(redis_server, kafka_server, model_path,
                                                 tmp_path):
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    upgrade = upgrade_for(settings, tmp_path)
    upgrade.train_args = ("--corpus", str(tmp_path / "missing.csv"))
    upgrade.start()
    line = wait_for(upgrade.poll, 120, "the failed training to end")
    assert "failed to train (exit 2" in line and str(tmp_path / "train.log") in line
