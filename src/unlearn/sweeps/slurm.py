"""``sweep.launcher=slurm``: every pending run of a grid as one SLURM job, through submitit (the maintained way to
put Python jobs on SLURM), as a job array of at most ``sweep.slurm.array_parallelism`` at a time.

Each job runs its grid run with the stage rules of :func:`unlearn.experiments.stages.run_planned`: a finished run is
kept, a run with a checkpoint of the same configuration resumes, anything else starts over. So a job that dies (time
limit, preemption, a node lost) leaves its checkpoint, and running the same ``unlearn sweep`` again submits only what
is not finished and resumes it. The selection and the report are written when the last job ends.

``sweep.slurm.cluster=local`` runs the same jobs as local processes (submitit's local executor): a test, or a machine
without SLURM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config.parsing import check, check_choice, setting
from unlearn.errors import ConfigError, UnlearnError

CLUSTERS = ("slurm", "local")


@dataclass
class SlurmConfig:
    partition: str | None = setting(None, "SLURM partition (sbatch --partition; default: the cluster's)")
    gpus_per_job: int = setting(1, "GPUs per job (one grid run each); 0 for CPU jobs")
    cpus_per_job: int | None = setting(None, "CPU cores per job (sbatch --cpus-per-task)")
    mem_gb: int | None = setting(None, "memory per job in GB")
    time_min: int = setting(120, "time limit per job in minutes; a job cut off resumes when the sweep is run again")
    array_parallelism: int = setting(16, "jobs of the array running at once")
    options: dict[str, Any] = setting(doc="further sbatch options by submitit's names, e.g. "
                                          "`sweep.slurm.options.account=myproject`, `…qos=high`, `…constraint=a100`",
                                      factory=dict)
    cluster: str = setting("slurm", "`slurm`, or `local`: the same jobs as local processes (submitit's local "
                                    "executor, for tests and machines without SLURM)")

    def __post_init__(self) -> None:
        check_choice(self.cluster, CLUSTERS, "sweep.slurm.cluster")
        check(self.gpus_per_job >= 0, "sweep.slurm.gpus_per_job", "be ≥ 0", self.gpus_per_job)
        check(self.time_min >= 1, "sweep.slurm.time_min", "be at least 1", self.time_min)
        check(self.array_parallelism >= 1, "sweep.slurm.array_parallelism", "be at least 1", self.array_parallelism)
        if self.cpus_per_job is not None:
            check(self.cpus_per_job >= 1, "sweep.slurm.cpus_per_job", "be at least 1", self.cpus_per_job)


OWN = {"partition", "time", "gpus_per_node", "cpus_per_task", "mem", "array_parallelism", "job_name",
       "additional_parameters"}
"""submitit's SLURM parameters that the named settings above set (not allowed again in ``options``)."""


def import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError("sweep.launcher=slurm needs submitit: pip install 'llm-unlearn[slurm]'") from None
    return submitit


def check_slurm(settings: SlurmConfig) -> None:
    """submitit installed and every ``options`` name one that submitit's SLURM executor knows (before anything is
    submitted)."""
    import_submitit()
    from submitit.slurm.slurm import _get_default_parameters

    known = sorted(set(_get_default_parameters()) - OWN)
    for name in settings.options:
        if name in OWN:
            raise ConfigError(f"sweep.slurm.options.{name}: set it with its own key (sweep.slurm.partition, "
                              "gpus_per_job, cpus_per_job, mem_gb, time_min, array_parallelism)")
        if name not in known:
            raise ConfigError(f"sweep.slurm.options.{name}: not an option submitit's SLURM executor knows; known: "
                              f"{', '.join(known)}")


def executor_for(settings: SlurmConfig, folder: Path, name: str) -> Any:
    submitit = import_submitit()
    executor = submitit.AutoExecutor(folder=str(folder), cluster=settings.cluster)
    executor.update_parameters(**executor_parameters(settings, name))
    return executor


def executor_parameters(settings: SlurmConfig, name: str) -> dict[str, Any]:
    """submitit's AutoExecutor parameters of the settings (``slurm_*`` ones apply on SLURM only)."""
    params: dict[str, Any] = {"name": name, "timeout_min": settings.time_min, "gpus_per_node": settings.gpus_per_job,
                              "slurm_array_parallelism": settings.array_parallelism}
    if settings.cpus_per_job is not None:
        params["cpus_per_task"] = settings.cpus_per_job
    if settings.mem_gb is not None:
        params["mem_gb"] = settings.mem_gb
    if settings.partition:
        params["slurm_partition"] = settings.partition
    return params | {f"slurm_{k}": v for k, v in settings.options.items()}


def run_grid_job(config_file: str) -> str:
    """One job: the grid run of ``config_file`` — kept when finished, resumed from its checkpoint, else run."""
    from unlearn.config import RunConfig, load_config
    from unlearn.experiments.common import quiet_libraries
    from unlearn.experiments.plan import plan_unlearning
    from unlearn.experiments.stages import run_planned
    from unlearn.experiments.unlearning import run_unlearning
    from unlearn.plugins import load_plugins

    quiet_libraries()
    load_plugins()  # entry points and UNLEARN_PLUGINS, which the sweep's --plugin set and the job inherits
    plan = plan_unlearning(load_config(RunConfig, config_file))
    run_planned(plan, run_unlearning)
    return str(plan.run.path)


def submit_and_wait(config_files: Sequence[Path], names: Sequence[str], settings: SlurmConfig, folder: Path,
                    echo) -> list[tuple[str, str]]:
    """Submit one job per config file as an array, wait for all; returns (name, error) of the jobs that failed."""
    executor = executor_for(settings, folder, "unlearn-sweep")
    jobs = executor.map_array(run_grid_job, [str(p) for p in config_files])
    echo(f"sweep: {len(jobs)} job(s) submitted ({settings.cluster}; logs in {folder})")
    failed = []
    for name, job in zip(names, jobs, strict=True):
        try:
            job.result()
            echo(f"  finished {name} (job {job.job_id})")
        except Exception as err:  # a job's failure, whatever it was: named, and the sweep goes on waiting
            lines = [ln for ln in str(err).splitlines() if ln.strip()]
            failed.append((name, next((ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else "")))
    return failed


def report_failures(failed: Sequence[tuple[str, str]], folder: Path) -> None:
    if failed:
        name, why = failed[0]
        raise UnlearnError(f"{len(failed)} sweep job(s) failed: {', '.join(n for n, _ in failed[:5])}; {name}: "
                           f"{why} (logs in {folder}); run the same sweep again to resume them")
