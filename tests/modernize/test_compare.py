"""The comparison rules of shadow and the replay test (sqlambda.delivery.compare), without a database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sqlambda.delivery.compare import MAX_LINES, diff_text, differences


@pytest.mark.parametrize("original, candidate, rules, expected", [
    (Decimal("9.50"), 9.5, {}, []),
    (Decimal("9.50"), "9.50", {}, []),                     # the router casts text to the type the same way
    ("9.50", "9.5", {}, ['$: "9.50" != "9.5"']),           # two strings are compared as strings
    (True, 1, {}, ["$: true != 1"]),                       # a boolean is not a number
    (None, 0, {}, ["$: null != 0"]),
    ({"a": 1, "b": 2}, {"a": 1}, {}, ["$.b: 2 != (missing)"]),
    ({"a": 1}, {"a": 1, "c": 3}, {}, ["$.c: (missing) != 3"]),
    ({"a": 1, "ts": "x"}, {"a": 1, "ts": "y"}, {"ignore_keys": ["ts"]}, []),
    ({"x": [{"ts": 1, "v": 2}]}, {"x": [{"ts": 5, "v": 2}]}, {"ignore_keys": ["ts"]}, []),   # at any depth
    ({"t": 10.001}, {"t": 10}, {"tolerance": 0.01}, []),
    ({"t": 10.02}, {"t": 10}, {"tolerance": 0.01}, ["$.t: 10.02 != 10"]),
    ([1, 2, 2], [2, 1, 2], {"unordered": True}, []),
    ([1, 2, 2], [2, 1, 1], {"unordered": True}, ["$[2]: 2 has no equal element in the Lambda's array",
                                                 "$: the Lambda's array has 1 more"]),
    ([1, 2], [2, 1], {}, ["$[0]: 1 != 2", "$[1]: 2 != 1"]),
    ([1], [1, 2], {}, ["$: 1 elements != 2 elements"]),
])
def test_differences(original, candidate, rules, expected):
    assert differences(original, candidate, **rules) == expected


def test_diff_text_is_bounded_and_says_how_many_more():
    lines = [f"$[{i}]: {i} != {i + 1}" for i in range(MAX_LINES + 5)]
    text = diff_text(lines)
    assert text.count("\n") == MAX_LINES and text.endswith("... and 5 more")
    assert diff_text([]) is None
