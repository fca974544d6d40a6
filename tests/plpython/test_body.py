"""The rendered PL/Python function body, executed here the way PL/Python runs it (the body becomes a
function whose globals hold ``plpy``, ``GD`` and the named arguments): modules load once per
backend, are cached in GD by checksum, and reload when a module or the spec defaults change."""

from __future__ import annotations

import re
import socket
import sys
import textwrap
import types

import pytest
from fake_plpy import FakePlpy

from sqlambda.spec.model import Spec
from sqlambda.targets.postgres.render import render_postgres


def _body(loaded, key="function public.awslambda_fn(text,text)") -> str:
    art = {a.key: a for a in render_postgres(loaded)}[key]
    m = re.search(r"AS \$(sqlambda\d*)\$(.*)\$\1\$", art.statements[0], re.S)
    return m.group(2)


def _as_function(body: str, plpy, GD):
    src = "def __plpython_procedure(fn_name, fn_args):\n" + textwrap.indent(body, "    ")
    g = {"plpy": plpy, "GD": GD}
    exec(compile(src, "<string>", "exec"), g)
    return g["__plpython_procedure"]


def _loaded(**aws):
    spec = Spec.model_validate({"project": "t", "aws": aws})
    return types.SimpleNamespace(spec=spec, path="t.yaml", checksum="1" * 64)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clean_modules():
    saved = {k: sys.modules.get(k) for k in ("sqlambda_core", "sqlambda_functions")}
    yield
    for k, v in saved.items():
        if v is not None:
            sys.modules[k] = v


def test_body_loads_once_and_calls_the_entry(monkeypatch, clean_modules):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    port = _closed_port()
    GD: dict = {}
    plpy = FakePlpy()
    fn = _as_function(_body(_loaded(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)), plpy, GD)
    for _ in range(2):
        with pytest.raises(plpy.Error) as e:
            fn("echo", "{}")
        assert e.value.sqlstate == "LA004" and f"127.0.0.1:{port}" in e.value.hint
    keys = [k for k in GD if k.startswith("sqlambda.bundle:")]
    assert len(keys) == 1
    entry = GD[keys[0]]
    assert entry.__name__ == "sqlambda_functions"
    # the spec default reached the embedded core
    assert entry.core.DEFAULTS["endpoint_url"] == f"http://127.0.0.1:{port}"
    # bad JSON is refused by the embedded module before any network work
    with pytest.raises(plpy.Error) as e:
        fn("echo", "{oops")
    assert e.value.sqlstate == "22P02"


def test_changed_defaults_reload_in_an_open_session(clean_modules):
    GD: dict = {}
    plpy = FakePlpy()
    a = _as_function(_body(_loaded(region="eu-west-1")), plpy, GD)
    b = _as_function(_body(_loaded(region="eu-central-1")), plpy, GD)
    for fn in (a, b):
        with pytest.raises(plpy.Error):
            fn("echo", "{oops")
    bundles = [GD[k] for k in GD if k.startswith("sqlambda.bundle:")]
    assert len(bundles) == 2
    assert {m.core.DEFAULTS["region"] for m in bundles} == {"eu-west-1", "eu-central-1"}
    assert bundles[0].core is not bundles[1].core  # each chain binds its own core


def test_every_plpython_function_shares_one_bundle():
    arts = render_postgres(_loaded())
    keys = {re.search(r"GD\.get\('(sqlambda\.bundle:[0-9a-f]+)'\)", s).group(1)
            for a in arts for s in a.statements if "LANGUAGE plpython3u" in s}
    assert len(keys) == 1
