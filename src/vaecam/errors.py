"""User-facing errors.

Every problem a user can fix (missing data, wrong layout, bad checkpoint, bad option) is raised
as a :class:`VaecamError` whose message is one line saying what is wrong and what to do. The CLI
prints that line and exits with status 2 instead of showing a traceback.
"""


class VaecamError(Exception):
    """A problem with the user's input, described in one line with the fix."""


class DataError(VaecamError):
    """A dataset folder or file is missing, malformed, or inconsistent."""


class CheckpointError(VaecamError):
    """A checkpoint cannot be read or does not fit the requested model."""


class ConfigError(VaecamError):
    """An option or configuration value is invalid."""


class MetricInputError(VaecamError, ValueError):
    """Scores or masks given to a metric are degenerate or inconsistent."""
