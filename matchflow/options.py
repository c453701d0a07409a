"""Typed command-line options: every value is checked by pydantic, as the run's configuration is
(:class:`matchflow.config.PipelineConfig`), before a command does any work.

:func:`typed` turns a constrained type into an argparse ``type=``; :class:`Parser` reports a bad option or argument
as one line naming it (exit 2) instead of argparse's usage block.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

Count = Annotated[int, Field(ge=1)]  # how many of something: 1 or more
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]  # a share, 0..1
Pixels = Annotated[int, Field(ge=16, le=8192)]  # an image side in pixels
Seed = Annotated[int, Field(ge=0, lt=2**32)]


def _multiple_of_16(v: int) -> int:
    if v % 16:
        raise ValueError(f"must be a multiple of 16 (got {v})")
    return v


def typed(annotation: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` that validates the text with pydantic (lax mode: ``"3"`` is the int 3) and reports
    the problem in one line."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def parse(text: str) -> Any:
        try:
            return adapter.validate_python(text)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise argparse.ArgumentTypeError(f"{text!r}: {msg[0].lower()}{msg[1:]}") from None

    parse.__name__ = getattr(annotation, "__name__", "value")
    return parse


count = typed(Count)
non_negative_int = typed(NonNegativeInt)
positive_float = typed(PositiveFloat)
non_negative_float = typed(NonNegativeFloat)
fraction = typed(Fraction)
pixels = typed(Pixels)
seed = typed(Seed)
crop_size = typed(Annotated[int, Field(ge=16, le=4096), AfterValidator(_multiple_of_16)])  # a square crop side


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, ``error: <command>: <problem>`` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {self.prog}: {message} (see {self.prog} --help)\n")
        sys.exit(2)
