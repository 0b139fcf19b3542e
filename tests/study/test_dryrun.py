"""The paper's own setup as a user meets it: a Market-1501-layout folder and a torchvision checkpoint saved the
usual way, in paths with a space and a non-ASCII character; the configurations the study builds from them, and
a dry run of every notebook through papermill (henetlib.study.dryrun, make reproduce QUICK=1)."""

import json

import pytest
import torch
import torchvision
from PIL import Image

from henetlib.engine.cache import result_key
from henetlib.engine.config import weights_sha256
from henetlib.study import dryrun, reproduce
from henetlib.study.tables import StudyContext
from henetlib.system.files import REPO_ROOT, figures_dir, results_dir

# a small backbone and input: the same path as ResNet50 at 384 x 128, in CI's minutes
SMALL = {"backbone": "resnet18", "height": 64, "width": 32}


def _market(root, train_ids=8, test_ids=4):
    """A Market-1501-layout folder: each identity a colour, two cameras; queries on camera 1, the gallery on 2."""
    g = torch.Generator().manual_seed(0)
    def img(path, pid):
        path.parent.mkdir(parents=True, exist_ok=True)
        base = torch.tensor([(37 * pid) % 255, (91 * pid) % 255, (53 * pid) % 255], dtype=torch.float32)
        noise = torch.randint(0, 40, (128, 64, 3), generator=g).float()
        Image.fromarray((base + noise).clamp(0, 255).byte().numpy()).save(path)
    for pid in range(1, train_ids + 1):
        for i in range(4):
            img(root / "bounding_box_train" / f"{pid:04d}_c{1 + i % 2}s1_{i:06d}_00.jpg", pid)
    for pid in range(100, 100 + test_ids):
        img(root / "query" / f"{pid:04d}_c1s1_000001_00.jpg", pid)
        for i in range(2):
            img(root / "bounding_box_test" / f"{pid:04d}_c2s1_{i:06d}_00.jpg", pid)
    img(root / "bounding_box_test" / "0000_c3s1_000009_00.jpg", 0)  # a distractor
    return root


@pytest.fixture(scope="module")
def user_setup(tmp_path_factory):
    home = tmp_path_factory.mktemp("user")
    data = _market(home / "my data ü" / "Market-1501")
    weights = home / "weights ü" / "resnet18 imagenet.pth"
    weights.parent.mkdir()
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)  # as a user saves one
    return data, weights


def _ctx(data, weights, **kw):
    return StudyContext.from_parameters("paper", "cpu", str(data), "", (0, 1), "default", str(weights),
                                        {**SMALL, **kw})


def test_every_run_of_the_full_study_starts_from_the_given_weights(user_setup, isolated_dirs):
    data, weights = user_setup
    ctx = _ctx(data, weights)
    runs = ctx.runs()
    assert len(runs) == 2 * 51  # the paper profile's study, two seeds
    sha = weights_sha256(weights)
    ds = ctx.dataset()
    for _, cfg in runs:
        assert cfg.pretrained == str(weights) and cfg.pretrained_path == str(weights)
        assert cfg.identity()["pretrained"] == f"sha256:{sha}"  # the key names the content, not the path
        assert cfg.epochs == 200 and cfg.max_steps is None and "max_steps" not in cfg.identity()
    keys = {result_key(cfg, ds) for _, cfg in runs}
    assert len(keys) == len(runs)
    quick = StudyContext.from_parameters("paper", "cpu", str(data), "", (0,), "default", str(weights),
                                         reproduce.quick_parameters({"seeds": [0, 1], "overrides": SMALL})["overrides"])
    q = quick.runs()
    assert len(q) == 51 and all(c.epochs == 1 and c.max_steps == reproduce.QUICK_STEPS and c.seed == 0 for _, c in q)
    assert not keys & {result_key(c, ds) for _, c in q}  # a dry run never lands on the study's cache entries


def test_the_key_follows_the_weights_content_not_their_path(user_setup, tmp_path):
    data, weights = user_setup
    moved = tmp_path / "elsewhere" / "renamed.pth"
    moved.parent.mkdir()
    moved.write_bytes(weights.read_bytes())
    a, b = _ctx(data, weights).runs()[0][1], _ctx(data, moved).runs()[0][1]
    assert a.identity() == {**b.identity(), "pretrained": a.identity()["pretrained"]}
    assert a.identity()["pretrained"] == b.identity()["pretrained"]
    torch.save({"state_dict": torchvision.models.resnet18(weights=None).state_dict()}, moved)  # other content
    assert _ctx(data, moved).runs()[0][1].identity()["pretrained"] != a.identity()["pretrained"]


@pytest.mark.parametrize("bad,message", [
    (lambda: torchvision.models.resnet50(weights=None).state_dict(), "do not match a torchvision resnet18"),
    (lambda: {"epoch": 3, "optimizer": {}}, "not a state_dict of tensors"),
    (lambda: [1, 2, 3], "holds a list"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_before_any_work(user_setup, tmp_path, bad, message):
    data, _ = user_setup
    path = tmp_path / "bad.pth"
    torch.save(bad(), path)
    with pytest.raises(ValueError, match=message):
        _ctx(data, path)


def test_training_checkpoints_are_accepted(user_setup, tmp_path):
    data, _ = user_setup
    state = torchvision.models.resnet18(weights=None).state_dict()
    for nest in ("state_dict", "model"):
        path = tmp_path / f"{nest}.pth"
        torch.save({nest: {f"module.{k}": v for k, v in state.items()}, "epoch": 90}, path)
        assert _ctx(data, path).overrides["pretrained"] == str(path)


@pytest.mark.slow
def test_a_dry_run_renders_every_notebook_from_the_users_weights(user_setup, isolated_dirs):
    """make reproduce PROFILE=paper DATA_ROOT=... PRETRAINED=... QUICK=1, through papermill."""
    data, weights = user_setup
    notebooks = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    extra = {"pretrained": str(weights), "overrides": SMALL, "seeds": [0, 1], "input_height": 64,
             "input_width": 32, "batch": 2, "repeats": 1, "draws": 20, "num_images": 2, "interactive": False}
    reports = isolated_dirs / "reports" / "dry-run"
    assert reproduce.run_notebooks(notebooks, profile="paper", device="cpu", data_root=data, extra=extra,
                                   reports_dir=reports, quick=True)
    for nb in notebooks:
        assert (reports / f"{nb.stem}.html").exists()
    figures = figures_dir() / "dry-run"
    for name in ("table2_structure.md", "table4_losses.tex", "fig5_occlusion.pdf", "claims.md", "claims_summary.json"):
        assert (figures / name).exists(), name
    assert not (figures_dir() / "claims.md").exists()  # nothing written over the study's own figures
    results = [json.loads(f.read_text()) for f in (results_dir() / "dry-run").glob("*/result.json")]
    assert len(results) == 51
    assert all(r["config"]["pretrained"] == str(weights) and r["config"]["max_steps"] == reproduce.QUICK_STEPS for r in results)
    rep = json.loads((reports / "dry_run.json").read_text())
    assert rep["regime"] == "fine-tuned from the given weights"
    assert rep["dataset"] == {"name": "market1501", "train_ids": 8, "train_images": 32, "query": 4, "gallery": 9}
    w = rep["weights"]
    assert w["runs_from_weights"] == w["runs"] == 51
    assert w["tensors_matched"] == len([k for k in torchvision.models.resnet18().state_dict() if not k.startswith("fc.")])
    assert rep["full_runs"] == 2 * 51 and rep["full_seconds"] > 0 and rep["seconds_per_step"] > 0
    assert rep["schedule"]["epochs"] == 200 and rep["schedule"]["steps_per_epoch"] == 8 // 4
    assert "51 of 51 runs started from them" in (reports / "dry_run.md").read_text()


def test_the_estimate_scales_each_measured_step_to_the_full_schedule():
    assert dryrun.steps_per_epoch(type("C", (), {"p": 4})(), 751) == 187  # Market-1501's 751 identities, P = 4
    assert dryrun._duration(30) == "30 s" and dryrun._duration(5400) == "1.5 h"


def test_a_weights_file_is_read_once_per_process_and_again_when_it_changes(user_setup, tmp_path, monkeypatch):
    from henetlib.study import tables

    data, weights = user_setup
    path = tmp_path / "w.pth"
    path.write_bytes(weights.read_bytes())
    reads = []
    real = tables.read_backbone_state
    monkeypatch.setattr(tables, "read_backbone_state", lambda *a: reads.append(a) or real(*a))
    for _ in range(3):  # make reproduce resolves the same parameters several times
        _ctx(data, path)
    assert len(reads) == 1
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)  # new content, new mtime
    _ctx(data, path)
    assert len(reads) == 2
    torch.save([1, 2, 3], path)
    for _ in range(2):  # a bad file is never remembered as checked
        with pytest.raises(ValueError, match="holds a list"):
            _ctx(data, path)
