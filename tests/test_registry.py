"""The one registry type: names and aliases, did-you-mean, refusal of a name taken twice, lazy built-ins."""

from __future__ import annotations

import pytest

from unlearn.errors import ConfigError
from unlearn.registry import Registry, RegistryError


def test_names_aliases_and_case():
    reg: Registry[int] = Registry("widget")
    assert reg.register("Alpha", 1, aliases=("a",), origin="my_plugin") == 1
    reg.register("beta", 2)
    assert reg["alpha"] == reg["A"] == reg.get_entry(" ALPHA ") == 1 and reg.canonical("a") == "alpha"
    assert list(reg) == ["alpha", "beta"] and len(reg) == 2 and "a" in reg and "gamma" not in reg
    assert reg.origin("a") == "my_plugin"  # who registered it, named in errors
    paths: Registry[int] = Registry("task file", fold_case=False)
    paths.register("lm_eval:/Data/Task.yaml", 3)
    assert "lm_eval:/Data/Task.yaml" in paths and "lm_eval:/data/task.yaml" not in paths


def test_unknown_names_suggest_the_closest_and_list_the_rest():
    reg: Registry[int] = Registry("forget objective", hint="`unlearn methods` lists them")
    for i, name in enumerate(("npo", "simnpo", "ga")):
        reg.register(name, i)
    with pytest.raises(ConfigError, match=r"unknown forget objective 'npx'; did you mean 'npo'\? known: npo, "
                                          r"simnpo, ga \(`unlearn methods` lists them\)"):
        reg.get_entry("npx")
    assert reg.unknown("zzz") == "unknown forget objective 'zzz'; known: npo, simnpo, ga (`unlearn methods` lists them)"


def test_a_name_taken_twice_names_both_registrations():
    reg: Registry[object] = Registry("attack")
    reg.register("leak", object(), origin="unlearn.attacks.leak")
    with pytest.raises(RegistryError, match=r"attack 'leak' is registered twice: by unlearn.attacks.leak and by "
                                            r"my_plugin"):
        reg.register("LEAK", object(), origin="my_plugin")
    with pytest.raises(RegistryError, match="registered twice"):  # an alias may not take a name either
        reg.register("other", object(), aliases=("leak",), origin="my_plugin")
    assert "other" not in reg  # nothing half-registered


def test_built_ins_load_on_first_read_only():
    calls = []

    def loader():
        calls.append(1)
        reg.register("built_in", 1)

    reg: Registry[int] = Registry("scenario", loader=loader)
    reg.register("early", 0)  # a plugin registering before anything is read: no load yet
    assert calls == []
    assert sorted(reg) == ["built_in", "early"] and calls == [1]
    assert reg["built_in"] == 1 and calls == [1]  # once


def test_every_task_declares_a_protocol_version():
    """lm-evaluation-harness's convention: each task says which version of its protocol produced a number."""
    from unlearn.tasks import TASKS, register
    from unlearn.tasks.tofu.task import TofuTask

    for name, task in TASKS.items():  # Task itself has no default: reading it proves the class declares one
        assert isinstance(task.version, int) and task.version >= 1, name

    class Unversioned(TofuTask):
        name = "unversioned_example"
        version = None

    with pytest.raises(RegistryError, match=r"task 'unversioned_example' .* declares no version: give its class "
                                            r"`version = 1`"):
        register(Unversioned())
    assert "unversioned_example" not in TASKS
