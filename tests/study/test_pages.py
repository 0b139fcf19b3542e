"""The index page and the README's generated headline (henetlib.study.pages)."""

import json
import re

from henetlib.study import pages
from henetlib.study.pages import write_index

SUMMARY = {"profile": "smoke", "regime": "fine-tuned", "regime_folder": "default", "finetune": True,
           "dataset": "synthreid", "seeds": [0, 1],
           "claims": {"reproduced": 5, "contradicted": 2, "unresolved": 13, "untestable here": 1, "not run": 1,
                      "total": 22},
           "rows": {"reproduced": 80, "contradicted": 10, "unresolved": 120, "not run": 2, "total": 212},
           "stable": {"claims": 19, "of": 21, "threshold": 0.9}, "controls": {"RE": "fails", "triplet": "passes"},
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
                  r"(\d+) untestable here, (\d+) not run\.\*\*.*Rows: (\d+) distinct.*?\((\d+) reproduced, "
                  r"(\d+) contradicted, (\d+) unresolved", block)
    assert [int(x) for x in m.groups()] == [c["total"], c["reproduced"], c["contradicted"], c["unresolved"],
                                            c["untestable here"], c["not run"], r["total"], r["reproduced"],
                                            r["contradicted"], r["unresolved"]]
    assert "19 of 21 verdicts are stable" in block and "RE fails; triplet passes" in block
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
    assert "<b>5</b> reproduced, <b>2</b> contradicted, <b>13</b> unresolved, <b>1</b> untestable here, <b>1</b> not run" in page
    assert "19 of 21 verdicts stable" in page and "RE fails" in page
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


def test_index_follows_the_papers_order_renders_tables_and_says_what_each_notebook_reproduces(tmp_path):
    figs, reps = tmp_path / "figures", tmp_path / "reports"
    figs.mkdir()
    reps.mkdir()
    # names that sort the wrong way: claims pages first, Fig. 4 before Table 2's chart
    for stem in ("claims_forest", "claims_forest-2", "fig4_rpe_probability", "fig_table2_structure",
                 "fig1_efficiency", "rpe_extra"):
        (figs / f"{stem}.png").write_bytes(b"png")
    (figs / "table2_structure.md").write_text("| Structure | R1 |\n|:--|--:|\n| P(1) | 78.50 ± 4.10 |\n\nThe caption.\n")
    (figs / "table2_claims.md").write_text("## Claims (one verdict each)\n\n| claim | verdict |\n|:--|:--|\n| T2a | x |\n")
    (figs / "table1_efficiency.md").write_text("| Method | ES among 8 (paper) |\n|:--|--:|\n| PCB | 3.45 |\n")
    (figs / "table2_structure.tex").write_text("x")
    (figs / "METHODS_NOTE.md").write_text("# How our numbers were made\n\nOurs: profile 'smoke', a CPU.\n")
    # a notebook the page has no line for: its first Markdown heading says what it reproduces
    (reps / "99_new.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["x = 1"]},
                                                             {"cell_type": "markdown", "source": ["# Fig. 6: new\n"]}]}))
    page = write_index(reps, ["01_structure_analysis", "99_new"], {}, {"profile": "smoke"}, figures=figs).read_text()
    thumbs = re.findall(r'alt="([^"]+)"', page)
    assert thumbs == ["fig1_efficiency", "fig_table2_structure", "fig4_rpe_probability", "rpe_extra",
                      "claims_forest", "claims_forest-2"]
    tables = re.findall(r"<summary><b>([^<]+)</b>", page)
    assert tables == ["table1_efficiency", "table2_structure", "table2_claims"]  # claims tables last
    # a table reads as a table, with its caption; its Markdown and LaTeX are linked, not the only way in
    assert "<td>78.50 ± 4.10</td>" in page and "<p>The caption.</p>" in page and "| P(1) |" not in page
    assert 'href="../figures/table2_structure.md">Markdown</a>' in page and "table2_structure.tex" in page
    assert "<h4>Claims (one verdict each)</h4>" in page
    # the methods note is shown once, not listed as a table
    assert "How our numbers were made" in page and "METHODS_NOTE</b>" not in page
    assert pages.NOTEBOOKS["01_structure_analysis"] in page.replace("&#x27;", "'")
    assert "<td>99_new</td><td>Fig. 6: new</td>" in page
    assert pages.paper_rank("claims") > pages.paper_rank("fig5_occlusion_table")
    assert pages.paper_rank("fig1_efficiency-2") > pages.paper_rank("fig1_efficiency")


def test_the_readme_headline_matches_the_committed_scoreboard():
    """The committed README's generated headline and figures/claims.md say the same claim-level verdicts."""
    from henetlib.system.files import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    claims_md = (REPO_ROOT / "figures" / "claims.md").read_text()
    block = _block(readme)
    table = claims_md.split("## Claims (one verdict each)")[1].split("## Rows")[0]
    header = [h.strip() for h in table.strip().splitlines()[0].strip("|").split("|")]
    col = header.index("verdict")
    verdicts = [row.strip("|").split("|")[col].strip() for row in table.strip().splitlines()[2:]]
    kinds = ("reproduced", "contradicted", "unresolved", "untestable here", "not run")
    counted = {k: sum(v.endswith(k) for v in verdicts) for k in kinds}
    m = re.search(r"Of the paper's (\d+) tested claims, ([^.]*)\.\*\*", block)
    said = {k: int(n) for n, k in re.findall(r"(\d+) (reproduced|contradicted|unresolved|untestable here|not run)",
                                             m.group(2))}
    assert int(m.group(1)) == len(verdicts)
    assert {k: said.get(k, 0) for k in kinds} == counted


def test_the_reproduction_block_is_rewritten_from_its_json(tmp_path):
    readme, summary = tmp_path / "README.md", tmp_path / "claims_summary.json"
    readme.write_text(README_TEXT + "<!-- reproduction:start -->\nold\n<!-- reproduction:end -->\n")
    summary.write_text(json.dumps(SUMMARY))
    (tmp_path / "reproduction.json").write_text(json.dumps({"sentence": "33 of 33 fresh runs inside."}))
    assert pages.update_headline(readme, summary, "smoke")
    assert "**On this machine:** 33 of 33 fresh runs inside." in readme.read_text()
