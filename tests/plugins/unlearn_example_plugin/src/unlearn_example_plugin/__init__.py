"""An example `unlearn` plugin: a forget objective (``capped_ga``) and an evaluation task (``forget_nll``)."""
