"""Config files + key=value overrides: precedence, types, unknown keys."""

from __future__ import annotations

import pytest

from unlearn.config import RunConfig, dump_yaml, load_config, parse_overrides
from unlearn.errors import ConfigError


def test_defaults_reproduce_the_reference_recipe():
    cfg = RunConfig()
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.train.epochs) == (1e-5, 0.01, 5)
    assert cfg.train.batch_size * cfg.train.grad_accum == 32
    assert cfg.data.max_length is None and cfg.eval.max_length == 200  # the task's default fills it
    from unlearn.experiments.plan import with_task_defaults

    tofu = with_task_defaults(cfg)
    assert (tofu.data.max_length, tofu.data.forget_split, tofu.data.train_splits) == (500, "forget10", ["full"])
    assert with_task_defaults(tofu) == tofu  # idempotent
    assert with_task_defaults(load_config(RunConfig, None, ["data.max_length=64"])).data.max_length == 64
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
    tree = parse_overrides(["train.max_steps=null", "train.lora=true", "forget.gamma=0.5", "model=001",
                            "task=tofu"], RunConfig)
    assert tree == {"train": {"max_steps": None, "lora": True}, "forget": {"gamma": 0.5}, "model": {"path": "001"},
                    "eval": {"task": "tofu"}}


@pytest.mark.parametrize(
    ("override", "message"),
    [("train.lr=0", "train.lr must be positive, got 0"),
     ("train.grad_accum=0", "train.grad_accum must be at least 1"),
     ("train.stop_after_epoch=6", r"train.stop_after_epoch must be at most train.epochs \(5\), got 6"),
     ("train.stop_after_epoch=-1", "train.stop_after_epoch must be ≥ 0"),
     ("train.mixed_precision=fp8", "train.mixed_precision must be one of auto, no, bf16"),
     ("eval.bootstrap=-1", "eval.bootstrap must be ≥ 0"),
     ("eval.top_p=1.5", r"eval.top_p must be in \(0, 1\]"),
     ("eval.forget_rows=0", "eval.forget_rows must be at least 1"),
     ("model.template=alpaca", "model.template must be one of"),
     ("data.max_length=1", "data.max_length must be at least 2"),
     ("method.forget_weight=-0.5", "method.forget_weight must be a non-negative number")],
)
def test_field_checks_live_in_the_config_and_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, None, [override])


def test_epoch_sets_must_be_among_sets():
    with pytest.raises(ConfigError, match=r"eval\.epoch_sets must be among eval\.sets"):
        load_config(RunConfig, None, ["eval.sets=forget,retain", "eval.epoch_sets=world_facts"])


def test_renamed_key_still_works_with_a_note():
    with pytest.warns(FutureWarning, match=r"eval\.mc_rows' is now 'eval\.option_rows'"):
        cfg = load_config(RunConfig, None, ["eval.mc_rows=40"])
    assert cfg.eval.option_rows == 40


def test_loop_settings_are_derived_explicitly_from_train():
    from unlearn.train.loop import LoopSettings

    train = load_config(RunConfig, None, ["train.lr=3e-4", "train.grad_accum=2", "train.max_grad_norm=0.5",
                                          "train.save_every=3", "train.max_steps=9"]).train
    s = LoopSettings.from_train(train, progress=False, desc="x")
    assert (s.lr, s.grad_accum, s.max_grad_norm, s.save_every, s.max_steps) == (3e-4, 2, 0.5, 3, 9)
    assert (s.epochs, s.batch_size, s.weight_decay, s.warmup_epochs, s.seed) == (5, 4, 0.01, 1.0, 0)
    assert (s.schedule, s.decay, s.progress, s.desc) == ("linear", "matrices", False, "x")


def test_per_method_overrides_in_the_demo_use_the_same_syntax():
    from unlearn.tasks.tofu.demo import DemoConfig

    demo = load_config(DemoConfig, None, ["methods=npo+gd,simnpo+gd", "method_overrides.npo+gd.forget.beta=0.5",
                                          "method_overrides.simnpo+gd.method.recipe=paper"])
    assert demo.method_overrides == {"npo+gd": {"forget": {"beta": 0.5}}, "simnpo+gd": {"method": {"recipe": "paper"}}}


@pytest.mark.parametrize("benchmark", ["tofu", "muse", "wmdp"])
def test_every_demo_checks_methods_and_their_overrides_before_training(benchmark):
    from unlearn.tasks.demo import DEMOS

    config_class = DEMOS[benchmark].config_class
    with pytest.raises(ConfigError, match=r"unknown config key 'method_overrides\.npo\+gd\.forgett'; did you mean"):
        load_config(config_class, None, ["methods=npo+gd", "method_overrides.npo+gd.forgett.beta=1"])
    with pytest.raises(ConfigError, match="forget objective 'npo' has no parameter"):
        load_config(config_class, None, ["methods=npo+gd", "method_overrides.npo+gd.forget.betta=1"])
    with pytest.raises(ConfigError, match=r"method_overrides must name methods of `methods`"):
        load_config(config_class, None, ["methods=npo+gd", "method_overrides.ga+gd.forget.beta=1"])
    with pytest.raises(ConfigError, match="unknown method"):
        load_config(config_class, None, ["methods=npo+gd,nop+gd"])
    with pytest.raises(ConfigError, match="unlearn_lr must be positive"):
        load_config(config_class, None, ["unlearn_lr=0"])
