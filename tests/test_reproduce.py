"""make reproduce's driver: the training shards and the fine-tuned regime's own folders (nothing trained)."""

import os

import pytest

from henetlib.study import reproduce


class _Proc:
    def __init__(self, cmd, code=0, **kw):
        self.cmd, self.code, self.env = cmd, code, kw.get("env")

    def wait(self):
        return self.code


def test_train_shards_commands(monkeypatch):
    made = []

    def popen(cmd, **kw):
        made.append(_Proc(cmd, **kw))
        return made[-1]

    monkeypatch.setattr("subprocess.Popen", popen)
    reproduce._train_shards({"profile": "smoke", "device": "cpu", "seeds": [0, 1], "finetune": True}, 2)
    reproduce._train_shards({"profile": "smoke", "device": "cpu", "finetune": False}, 2)
    assert made[-1].cmd[-3:] == ["--from-scratch", "--shard", "2/2"]
    made[2:] = []
    assert [p.cmd[-1] for p in made] == ["1/2", "2/2"]
    assert made[0].cmd[3:] == ["study", "--profile", "smoke", "--device", "cpu", "--seeds", "0,1", "--finetune",
                               "--shard", "1/2"]
    assert all(p.env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 2) // 2)) for p in made)


def test_train_shards_failure_names_the_command(monkeypatch):
    monkeypatch.setattr("subprocess.Popen", lambda cmd, **kw: _Proc(cmd, code=1 if cmd[-1] == "2/2" else 0))
    with pytest.raises(RuntimeError, match=r"exit codes \[0, 1\].*--shard 1/2"):
        reproduce._train_shards({"profile": "smoke", "device": "cpu"}, 2)


def test_figures_in_restores_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HENET_FIGURES_DIR", str(tmp_path / "a"))
    with reproduce._figures_in(tmp_path / "a" / "finetune"):
        assert os.environ["HENET_FIGURES_DIR"] == str(tmp_path / "a" / "finetune")
    assert os.environ["HENET_FIGURES_DIR"] == str(tmp_path / "a")
    monkeypatch.delenv("HENET_FIGURES_DIR")
    with reproduce._figures_in(tmp_path / "b"):
        pass
    assert "HENET_FIGURES_DIR" not in os.environ


def test_reproduce_refuses_finetune_on_a_profile_without_it(capsys):
    from henetlib.cli import main

    with pytest.raises(ValueError, match="no pretrained regime"):
        main(["reproduce", "--profile", "test", "--finetune", "--notebooks", "08"])
    with pytest.raises(SystemExit, match="contradict"):
        main(["reproduce", "--profile", "smoke", "--finetune", "--from-scratch", "--notebooks", "08"])


def test_regime_folders():
    from henetlib.study.grids import regime_name

    assert regime_name("smoke", True) == "default" and regime_name("smoke", False) == "from-scratch"
    assert regime_name("gpu", False) == "default" and regime_name("gpu", True) == "fine-tuned"
