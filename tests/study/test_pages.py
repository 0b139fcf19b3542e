"""The index page and the README's generated headline (henetlib.study.pages)."""

import json
import re

from henetlib.study import pages
from henetlib.study.pages import write_index

SUMMARY = {"profile": "smoke", "regime": "fine-tuned", "regime_folder": "default", "finetune": True,
           "dataset": "synthreid", "seeds": [0, 1],
           "claims": {"reproduced": 5, "contradicted": 2, "unresolved": 14, "not run": 1, "total": 22},
           "rows": {"reproduced": 80, "contradicted": 10, "unresolved": 120, "not run": 2, "total": 212},
           "claims_off_regime": 3, "noise": "", "headline": ""}


README_TEXT = ("# henet-study\n\nIntro line.\n\n<!-- headline:start -->\nold, typed headline\n<!-- headline:end -->\n"
               "\n## More\n\nUntouched | text.\n")


def _block(text):
    return re.search(r"<!-- headline:start -->\n(.*)\n<!-- headline:end -->", text, flags=re.S).group(1)


def test_headline_is_what_the_summary_says(tmp_path):
    readme, summary = tmp_path / "README.md", tmp_path / "claims_summary.json"
    readme.write_text(README_TEXT)
    summary.write_text(json.dumps(SUMMARY))
    assert pages.update_headline(readme, summary, "smoke")
    text = readme.read_text()
    block = _block(text)
    assert block == pages.headline_text(SUMMARY)
    c, r = SUMMARY["claims"], SUMMARY["rows"]
    m = re.search(r"Of the paper's (\d+) tested claims, (\d+) reproduced, (\d+) contradicted, (\d+) unresolved, "
                  r"(\d+) not run\*\* \((\d+) rows.*?: (\d+) reproduced, (\d+) contradicted, (\d+) unresolved", block)
    assert [int(x) for x in m.groups()] == [c["total"], c["reproduced"], c["contradicted"], c["unresolved"],
                                            c["not run"], r["total"], r["reproduced"], r["contradicted"],
                                            r["unresolved"]]
    assert "Profile `smoke`, fine-tuned, synthreid, seeds 0, 1" in block and "3 of 22 verdicts" in block
    # everything outside the markers is kept byte for byte
    assert text.replace(block, "old, typed headline") == README_TEXT
    mtime = readme.stat().st_mtime_ns
    assert not pages.update_headline(readme, summary, "smoke")  # already says it: not written again
    assert readme.stat().st_mtime_ns == mtime


def test_headline_left_alone_without_markers_or_for_another_study(tmp_path):
    readme, summary = tmp_path / "README.md", tmp_path / "claims_summary.json"
    summary.write_text(json.dumps(SUMMARY))
    readme.write_text("# henet-study\n\nNo generated headline here.\n<!-- headline:start -->\n")
    before = readme.read_bytes()
    assert not pages.update_headline(readme, summary, "smoke")
    assert readme.read_bytes() == before
    readme.write_text(README_TEXT)
    assert not pages.update_headline(readme, summary, "test")  # the summary is smoke's, not this run's
    summary.write_text(json.dumps({**SUMMARY, "regime_folder": "from-scratch"}))  # 08 run by hand, other regime
    assert not pages.update_headline(readme, summary, "smoke")
    assert not pages.update_headline(readme, tmp_path / "missing.json", "smoke")
    assert readme.read_text() == README_TEXT


def test_index_counts_verdicts_from_the_summary(tmp_path):
    figs, reps = tmp_path / "figures", tmp_path / "reports"
    figs.mkdir()
    reps.mkdir()
    # claims.md says otherwise: the counts must come from the summary, not from reading the table back
    (figs / "claims.md").write_text("| claim | verdict |\n|:--|:--|\n| T2.1 | ✓ reproduced |\n\ncaption\n")
    page = pages.write_index(reps, ["08_claims"], {}, {"profile": "smoke"}, figures=figs).read_text()
    assert "No scoreboard yet" in page
    (figs / "claims_summary.json").write_text(json.dumps(SUMMARY))
    page = pages.write_index(reps, ["08_claims"], {}, {"profile": "smoke"}, figures=figs).read_text()
    assert "<b>5</b> reproduced, <b>2</b> contradicted, <b>14</b> unresolved, <b>1</b> not run" in page
    assert "Verdicts of 22 claims" in page and "The whole scoreboard" in page and "T2.1" in page


def test_index_page_links_offline(tmp_path):
    figs, reps = tmp_path / "figures", tmp_path / "reports"
    figs.mkdir()
    reps.mkdir()
    (reps / "00_x.html").write_text("<html></html>")
    (figs / "claims.md").write_text("| claim | verdict |\n|:--|:--|\n| T2.1 | ✓ reproduced |\n| T2.2 | ? unresolved |\n"
                                    "| T2.3 | ✓ reproduced |\n\ncaption\n")
    # the counts notebook 08 writes beside the scoreboard (the index reads them, and folds claims.md)
    counts = {"reproduced": 2, "contradicted": 0, "unresolved": 1, "not run": 0}
    (figs / "claims_summary.json").write_text(json.dumps({
        "claims": {"total": 3, **counts}, "rows": {"total": 3, **counts}, "profile": "test",
        "regime": "from random weights", "seeds": [0]}))
    (figs / "fig1.png").write_bytes(b"png")
    (figs / "fig1.pdf").write_bytes(b"pdf")
    (figs / "fig1.caption.txt").write_text("Fig one & more.")
    page = write_index(reps, ["00_x", "01_y"], {"00_x": 3.0}, {"profile": "test"}, figures=figs).read_text()
    assert 'href="00_x.html"' in page and "not rendered" in page
    assert "<b>2</b> reproduced" in page and "<b>1</b> unresolved" in page
    assert 'src="../figures/fig1.png"' in page and 'href="../figures/fig1.pdf"' in page and "Fig one &amp; more." in page
    assert "http://" not in page and "https://" not in page
