"""Errors a user can act on. The CLI prints them as one clear line instead of a traceback."""


class UnlearnError(Exception):
    """Base class for every error caused by input the user controls (config, data, model choice)."""


class ConfigError(UnlearnError):
    """A configuration value is missing, unknown or inconsistent."""


class DataError(UnlearnError):
    """A data file or record is malformed. Messages name the file, row and field."""


class ModelError(UnlearnError):
    """A model or tokenizer cannot be loaded or does not fit the data."""


class TrainingDiverged(UnlearnError):
    """The loss became NaN or infinite; training stops before writing anything derived from it."""
