"""The scripts ``render -o`` writes run unchanged with ``psql -f`` (in file-name order), twice."""

from __future__ import annotations

import subprocess
import types

import psycopg
import pytest

from sqlambda.spec.model import Spec
from sqlambda.targets.postgres.render import render_files, render_postgres

pytestmark = pytest.mark.postgres


def test_rendered_files_run_with_psql_and_uninstall_cleanly(pg_cluster, pg_dsn, tmp_path):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DO $$ BEGIN CREATE ROLE rt_render_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    spec = Spec.model_validate({
        "project": "r", "postgres": {"generic_roles": ["rt_render_reader"], "rds_compat": True, "schema": "lam"},
        "functions": [{"name": "f1", "lambda": "echo", "args": {"a": "text"}, "roles": ["rt_render_reader"]}],
    })
    loaded = types.SimpleNamespace(spec=spec, path="r.yaml", checksum="3" * 64)
    files = render_files(loaded)
    psql = str(pg_cluster._bindir / "psql")
    for _ in range(2):  # idempotent: a second run over an installed database succeeds too
        for name in sorted(files):
            path = tmp_path / name
            path.write_text(files[name])
            res = subprocess.run([psql, "-X", "-v", "ON_ERROR_STOP=1", "-q", "-d", pg_dsn, "-f", str(path)],
                                 capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, f"{name}: {res.stderr}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for a in render_postgres(loaded):
            for kind, value in a.probe:
                if kind == "regprocedure":
                    assert conn.execute("SELECT to_regprocedure(%s)", (value,)).fetchone()[0] is not None, value
        assert conn.execute("SELECT has_function_privilege('rt_render_reader', 'f1(text)', 'EXECUTE')").fetchone()[0]
        # drop everything in reverse install order: no leftovers, user objects untouched
        conn.execute("CREATE TABLE lam.user_table (x int)")
        for a in reversed(render_postgres(loaded)):
            for s in a.drop:
                conn.execute(s)
        left = conn.execute("""SELECT count(*) FROM pg_proc WHERE pronamespace::regnamespace::text IN ('lam','aws_lambda','aws_commons')
                               OR proname IN ('awslambda_fn', 'awslambda_fn_async', 'f1')""").fetchone()[0]
        assert left == 0
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
        assert "lam" in schemas and "aws_lambda" not in schemas and "aws_commons" not in schemas
        # dropping again (uninstall twice, or after a manual drop) is harmless
        for a in reversed(render_postgres(loaded)):
            for s in a.drop:
                conn.execute(s)
