"""What building one pod found wrong, or worth a warning, collected to be reported at once.

Pure: no I/O. The pod builder checks a job against the config in many small places (quantities,
caps, names, the platform); a user who fixes one problem should see every other one too, so
each place adds to a :class:`BuildReport` and the builder raises one ``ConfigError`` at the end.
Warnings (an overwrite that is not allowed, an option the platform ignores) do not stop the
build; they go to the job's trace.
"""

from __future__ import annotations

from skyrunner.errors import ConfigError

__all__ = ["BuildReport"]


class BuildReport:
    """Errors and warnings found while building one pod, in the order they were found."""

    def __init__(self) -> None:
        self._errors: list[str] = []
        self._warnings: list[str] = []

    def error(self, message: str) -> None:
        if message not in self._errors:
            self._errors.append(message)

    def warn(self, message: str) -> None:
        if message not in self._warnings:
            self._warnings.append(message)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._warnings)

    def raise_errors(self, subject: str) -> None:
        """Raise one ``ConfigError`` naming ``subject`` and every error so far, if any.

        Raises:
            ConfigError: at least one error was found.
        """
        if self._errors:
            raise ConfigError(f"{subject}: {'; '.join(self._errors)}")
