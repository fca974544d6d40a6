"""Comparison of an original function's result with its Lambda's (modernize shadow and canary).

Owns: deciding whether two JSON values match under a modernize entry's ``compare`` rules (keys to
ignore at any depth, an absolute numeric tolerance, order-insensitive arrays) and saying where they
differ, one line per difference with its JSON path (``$.lines[2].total: 12.5 != 13``).

Numbers compare by value whatever their spelling (the original's ``numeric`` 9.50 is the Lambda's
9.5), and a number matches a string that spells the same number, because the router casts the
Lambda's text to the function's type the same way (``'9.50'::numeric``). Nothing else converts.

Must not: do I/O. It is plain Python so the drainer, ``modernize status`` and the scaffolded replay
test (which carries a copy of the rules, not of this code) agree on what a match is.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

#: at most this many differences are listed per comparison (the count is always exact)
MAX_LINES = 20


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, Decimal)):
        return Decimal(str(v))
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def _encode(v: Any) -> str:
    """JSON text with Decimals digit for digit (json.dumps would quote them or round them)."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_encode(x)}" for k, x in sorted(v.items())) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_encode(x) for x in v) + "]"
    return json.dumps(v, default=str)


def _show(v: Any) -> str:
    text = _encode(v)
    return text if len(text) <= 200 else text[:197] + "..."


def differences(original: Any, candidate: Any, *, ignore_keys: tuple[str, ...] | list[str] = (),
                tolerance: float = 0.0, unordered: bool = False) -> list[str]:
    """Where ``candidate`` differs from ``original``: [] when they match."""
    out: list[str] = []
    ignore = set(ignore_keys)
    tol = Decimal(str(tolerance))

    def same(a: Any, b: Any) -> bool:
        return not walk(a, b, "$", [])

    def walk(a: Any, b: Any, path: str, acc: list[str]) -> list[str]:
        na, nb = _number(a), _number(b)
        if na is not None and nb is not None and (not isinstance(a, str) or not isinstance(b, str)):
            if abs(na - nb) > tol:
                acc.append(f"{path}: {_show(a)} != {_show(b)}")
            return acc
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if k in ignore:
                    continue
                if k not in b:
                    acc.append(f"{path}.{k}: {_show(a[k])} != (missing)")
                elif k not in a:
                    acc.append(f"{path}.{k}: (missing) != {_show(b[k])}")
                else:
                    walk(a[k], b[k], f"{path}.{k}", acc)
            return acc
        if isinstance(a, list) and isinstance(b, list):
            if unordered:
                rest = list(b)
                for i, item in enumerate(a):
                    match = next((j for j, other in enumerate(rest) if same(item, other)), None)
                    if match is None:
                        acc.append(f"{path}[{i}]: {_show(item)} has no equal element in the Lambda's array")
                    else:
                        rest.pop(match)
                for item in rest:
                    acc.append(f"{path}: the Lambda's array has {_show(item)} more")
                return acc
            if len(a) != len(b):
                acc.append(f"{path}: {len(a)} elements != {len(b)} elements")
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]", acc)
            return acc
        if isinstance(a, bool) or isinstance(b, bool):
            differs = not (isinstance(a, bool) and isinstance(b, bool) and a == b)  # True is not 1
        else:
            differs = a != b
        if differs:
            acc.append(f"{path}: {_show(a)} != {_show(b)}")
        return acc

    walk(original, candidate, "$", out)
    return out


def diff_text(lines: list[str]) -> str | None:
    """The readable diff stored with a mismatch (None for a match)."""
    if not lines:
        return None
    shown = lines[:MAX_LINES]
    more = len(lines) - len(shown)
    return "\n".join(shown + ([f"... and {more} more"] if more else []))
