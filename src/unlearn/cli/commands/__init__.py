"""One module per ``unlearn`` command (trl's ``cli/commands/`` shape): each names itself (``NAME``), says what it
does (``HELP``, optionally ``EXAMPLE``), declares its arguments (``add_arguments``) and runs (``run(args) -> int``).
:data:`COMMANDS` is the order ``unlearn --help`` lists them in."""

COMMANDS = ("demo", "finetune", "run", "eval", "score", "tofu_subset", "methods", "tasks", "sequential",
            "generate_data", "study", "report", "attack", "scenario", "sweep", "compare", "overall",
            "meta_eval", "export")
