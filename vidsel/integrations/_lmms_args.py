"""Integer arguments as lmms-eval hands them over (shared by the lmms-eval model and the
sampler): lmms-eval's ``--model_args`` parser turns ``16`` into an int but leaves ``16.0`` a
float and quoted values text, and qwen-vl-utils-style ``ele`` dicts carry whatever the caller's
decoder reported (``total_frames`` may be a float or a numpy integer)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["as_int"]


def as_int(name: str, value: Any) -> int:
    """``value`` as an int when it is a whole number: an int or numpy integer, an integral
    finite float (``16.0``), or text holding one (``" 16"``, ``"16.0"``, ``"-3"``).

    The sign is not checked: callers bound it (``check_positive_int``, a frame range check).

    Raises:
        InvalidArgumentError: a bool, a fraction, a non-finite number, other text or types;
            the message names ``name`` and the value.
    """
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
    whole = not isinstance(number, bool) and (
        isinstance(number, (int, np.integer))
        or (isinstance(number, (float, np.floating)) and math.isfinite(number)
            and float(number).is_integer()))
    if whole:
        return int(number)
    raise InvalidArgumentError(f"{name}={value!r} must be an integer")
