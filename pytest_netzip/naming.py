"""Error messages for names a user got wrong: what was given, a close match, and what is valid."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name_message(kind: str, given: object, valid: Iterable[str]) -> str:
    """``unknown compressor 'int8': did you mean 'int8_dynamic'? valid: bf16, fp16, ...``."""
    valid = sorted(valid)
    message = f"unknown {kind} {given!r}"
    if isinstance(given, str):
        close = difflib.get_close_matches(given, valid, n=1) or [name for name in valid if name.startswith(given)]
        if close:
            message += f": did you mean {close[0]!r}?"
    return f"{message} (valid: {', '.join(valid)})"
