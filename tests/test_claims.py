import numpy as np
import pytest

from henetlib import claims, study
from henetlib import experiments as ex


def test_every_listed_claim_compares_existing_rows():
    labels = {
        "table2": set(ex.paper_rows("table2")), "table3": set(ex.paper_rows("table3")),
        "table4": set(ex.paper_rows("table4")), "table1": set(study.TABLE1_ROWS),
        "fig4": {"RE", "RPE(20)", "RE+RPE(20)"}, "fig5": {"none", "RE", "RPE(20)", "RE+RPE(20)"},
    }
    for c in claims.CLAIMS:
        assert {c.better, c.worse} <= labels[c.grid], c
    # the paper's own numbers put every numeric claim on the positive side
    for c in claims.CLAIMS:
        for m in ("R1", "mAP"):
            d = claims.paper_difference(c, m)
            assert np.isnan(d) or d > 0, (c, m, d)


def test_scoreboard_gives_every_claim_a_verdict(isolated_dirs):
    ctx = ex.StudyContext("test", "cpu")
    board = claims.scoreboard(ctx, n_boot=200, claims=claims.for_grid("table4"))
    assert len(board) == 2 * len(claims.for_grid("table4"))
    assert set(board["verdict"]) <= {"reproduced", "contradicted", "unresolved"}
    assert (board["lo"] <= board["ours diff"]).all() and (board["ours diff"] <= board["hi"]).all()
    assert "on test" in claims.summary_line(board, "test")
    # nothing trained, nothing published: "not run", never a guess
    other = ex.StudyContext("test", "cpu", seeds=(7,))
    empty = claims.scoreboard(other, n_boot=50, claims=claims.for_grid("table2"), train=False)
    assert set(empty["verdict"]) == {"not run"}


def test_publish_round_trip_renders_without_training(isolated_dirs, monkeypatch):
    from henetlib import publish

    cfg = ex.make_config("test", device="cpu", stripes=(1, 4), recovery=True)
    trained = ex.run(cfg, progress=False)
    archive = publish.pack("test", isolated_dirs / "out")
    monkeypatch.setenv("HENET_PUBLISHED_DIR", str(isolated_dirs / "published"))
    monkeypatch.setenv("HENET_RESULTS_DIR", str(isolated_dirs / "elsewhere"))  # a fresh clone: no results/
    assert publish.unpack(archive, "test") == 1
    found = ex.lookup(cfg, ex.dataset_for(cfg))
    assert found is not None and found.published and found.metrics == trained.metrics
    assert found.per_query == trained.per_query
    monkeypatch.setattr(ex, "train", lambda *a, **k: pytest.fail("a published result was trained again"))
    assert ex.run(cfg, progress=False).key == trained.key


def test_unpack_rejects_foreign_archives(isolated_dirs):
    import io
    import tarfile

    from henetlib import publish

    bad = isolated_dirs / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="unexpected member"):
        publish.unpack(bad, "test")


def test_study_context_reads_seeds_as_papermill_passes_them():
    assert ex.StudyContext("test", seeds="[0, 1]").seeds == (0, 1)
    assert ex.StudyContext("test", seeds="0,1,2").seeds == (0, 1, 2)
    assert ex.StudyContext("test", seeds=[3]).seeds == (3,)
    with pytest.raises(ValueError, match="seeds must be"):
        ex.StudyContext("test", seeds=["a"])
    with pytest.raises(ValueError, match="unknown profile"):
        ex.StudyContext("huge")
