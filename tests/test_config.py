"""Config files + key=value overrides: precedence, types, unknown keys."""

from __future__ import annotations

import pytest

from unlearn.config import RunConfig, dump_yaml, load_config, parse_overrides
from unlearn.errors import ConfigError


def test_defaults_reproduce_the_reference_recipe():
    cfg = RunConfig()
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.train.epochs) == (1e-5, 0.01, 5)
    assert cfg.train.batch_size * cfg.train.grad_accum == 32
    assert cfg.data.max_length == 500 and cfg.eval.max_length == 200
    assert (cfg.eval.forget_rows, cfg.eval.retain_rows) == (300, 300)
    assert (cfg.train.lora_r, cfg.train.lora_alpha) == (8, 32)
    assert cfg.model.trust_remote_code is False


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method:\n  name: npo+gd\ntrain:\n  lr: 2.0e-5\n  epochs: 3\nforget:\n  beta: 0.2\n")
    cfg = load_config(RunConfig, path, ["train.epochs=7", "retain.beta=0.3", "method=simnpo+gd", "train.lr=1e-4",
                                        "eval.sets=forget,retain", "model=models/001"])
    assert cfg.method.name == "simnpo+gd" and cfg.train.epochs == 7 and cfg.train.lr == 1e-4
    assert cfg.forget == {"beta": 0.2} and cfg.retain == {"beta": 0.3}
    assert cfg.eval.sets == ["forget", "retain"] and cfg.model.path == "models/001"
    assert load_config(RunConfig, None, [f"output_dir={tmp_path}"]).output_dir == str(tmp_path)
    assert "name: simnpo+gd" in dump_yaml(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [("train.lrr=1", "unknown config key 'train.lrr'; did you mean 'train.lr'"),
     ("train.epochs=two", "train.epochs must be an integer"),
     ("train.lora=maybe", "train.lora must be true or false"),
     ("train.lr.x=1", "'train.lr' is not a section"),
     ("lr", "must look like key=value"),
     ("trian.lr=1", "unknown config key 'trian'")],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, None, [override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(RunConfig, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(RunConfig, tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("train:\n  batch_size: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(RunConfig, tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"did you mean 'train\.epochs'"):
        load_config(RunConfig, tmp_path / "typo.yaml")


def test_override_values_are_yaml():
    tree = parse_overrides(["train.max_steps=null", "train.lora=true", "forget.gamma=0.5"])
    assert tree == {"train": {"max_steps": None, "lora": True}, "forget": {"gamma": 0.5}}
