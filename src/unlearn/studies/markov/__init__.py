"""The SimNPO paper's mixture-of-Markov-chains study (§5, App. H): ``unlearn study markov``.

:mod:`.config` (the study's settings), :mod:`.model` (GPT-2, pretraining, cache), :mod:`.metric` (transition KL),
:mod:`.study` (unlearning with the registry's NPO/SimNPO on the shared loop; the experiments), :mod:`.analysis`
(crossings, evenness, β selection), :mod:`.output` (tables and the paper's Fig. 5).
"""

from unlearn.studies.markov.analysis import first_crossing, select_beta
from unlearn.studies.markov.config import (
    DEFAULT_BETA_GRID,
    PAPER_BETAS,
    MarkovStudyConfig,
    beta_grid_flag,
    validate_beta_grid,
)
from unlearn.studies.markov.metric import TransitionEvaluator, per_position_transition_kl
from unlearn.studies.markov.model import build_model
from unlearn.studies.markov.output import format_summary, plot_study
from unlearn.studies.markov.study import config_from_args, run_experiment, run_markov_study, unlearn

run_study = run_markov_study  # the runner the study registry calls (unlearn.studies.STUDIES)

__all__ = [
    "DEFAULT_BETA_GRID", "PAPER_BETAS", "MarkovStudyConfig", "TransitionEvaluator", "beta_grid_flag", "build_model",
    "config_from_args", "first_crossing", "format_summary", "per_position_transition_kl", "plot_study",
    "run_experiment", "run_markov_study", "run_study", "select_beta", "unlearn", "validate_beta_grid",
]
