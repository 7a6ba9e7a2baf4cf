"""Configuration: typed dataclasses (:mod:`.schema`), the one parser (:mod:`.parsing`), paper recipes
(:mod:`.recipes`) and the rendered reference in docs/configuration.md (:mod:`.docs`)."""

from unlearn.config.parsing import dump_yaml, known_keys, load_config, parse_overrides, read_yaml, setting, to_dict
from unlearn.config.schema import DataConfig, EvalConfig, MethodConfig, ModelConfig, RunConfig, TrainConfig

__all__ = [
    "DataConfig", "EvalConfig", "MethodConfig", "ModelConfig", "RunConfig", "TrainConfig", "dump_yaml", "known_keys",
    "load_config", "parse_overrides", "read_yaml", "setting", "to_dict",
]
