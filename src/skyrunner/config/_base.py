"""The pydantic base of every config.toml table, and the strict scalar types the tables use.

Pure: no I/O. gitlab-runner reads config.toml with a strict TOML decoder: a string where a number
belongs is an error, not a conversion. The aliases here make pydantic just as strict for scalars
(``"10"`` is not an int, ``1`` is not a bool, ``2`` is not a string) while arrays still become
tuples, so that every model stays frozen all the way down.

Unknown keys are *kept* (``extra="allow"``): the loader warns about each one, and a config saved
back by :func:`skyrunner.config.save_config` still has the sections skyrunner does not use
(``[session_server]``, ``[runners.docker]``...), so a file shared with gitlab-runner survives.
They are left out of ``repr``, like the values that may be secret (tokens are ``SecretStr``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, StrictStr

__all__ = [
    "Bool",
    "Float",
    "Int",
    "NonNegativeInt",
    "Str",
    "TomlTable",
    "zero_means",
]

Str = StrictStr
Int = StrictInt
Bool = StrictBool
# Strict floats still take TOML integers (``0`` for a price), which is what a user means.
Float = Annotated[float, Strict(), Field(ge=0)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]


class TomlTable(BaseModel):
    """A table of config.toml: frozen, strict scalars, unknown keys kept for the warnings."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Unknown keys are raw TOML and may hold credentials ([runners.docker] password, ...):
        # they are kept for saving, never shown in a repr or a log line.
        extra = self.__pydantic_extra__ or {}
        for name, value in super().__repr_args__():
            if name is None or name not in extra:
                yield name, value


def zero_means(default: int) -> AfterValidator:
    """Validate an int where ``0`` means "the default", as gitlab-runner reads it."""

    def replace_zero(value: int) -> int:
        return value or default

    return AfterValidator(replace_zero)
