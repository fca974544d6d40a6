"""The Oracle render, checked for the properties that matter for safety and correctness (pure: no
database). What can only be proven on a live Oracle is in test_live.py."""

from __future__ import annotations

import re

import pytest
from oracle_specs import make_spec

from sqlambda.errors import RenderError
from sqlambda.spec.model import Spec
from sqlambda.targets import get_target
from sqlambda.targets.oracle import render as R
from sqlambda.targets.oracle.script import created_object


def _all_sql(arts) -> str:
    return "\n".join(s for a in arts for s in (*a.statements, *a.drop))


def _by_key(arts):
    return {a.key: a for a in arts}


def test_target_registered_with_oracle_facts():
    t = get_target("oracle")
    assert t.name == "oracle" and t.transactional_ddl is False and t.block_terminator == "/"


def test_core_without_spec_has_java_callspecs_and_generic_functions():
    arts = R.render(None).artifacts
    keys = [a.key for a in arts]
    assert "function AWSLAMBDA_FN" in keys and "function AWSLAMBDA_FN_ASYNC_CLOB" in keys
    java = [a for a in arts if a.kind == "java_source"]
    order = [l.strip() for l in (R.resources.folder("oracle_java") / "LOAD_ORDER").read_text().splitlines() if l.strip()]
    assert [a.key for a in java] == [f"java source sqlambda/{f.removesuffix('.java')}" for f in order]
    assert [a.order for a in java] == sorted(a.order for a in java)
    # no grants at all without roles: nothing is executable by anyone but the owner
    assert not [a for a in arts if a.kind == "grant"]


def test_java_sources_are_the_files_unchanged():
    for a in R.render(None).artifacts:
        if a.kind != "java_source":
            continue
        cls = a.key.rsplit("/", 1)[1]
        text = (R.resources.folder("oracle_java") / f"{cls}.java").read_text().rstrip("\n")
        (st,) = a.statements
        assert st.startswith(f'CREATE OR REPLACE AND COMPILE JAVA SOURCE NAMED "sqlambda/{cls}" AS\n')
        assert st.endswith(text)


def test_no_public_grant_no_public_synonym_no_wildcard_permission(full_spec):
    sql = _all_sql(R.render(full_spec).artifacts)
    assert not re.search(r"\bTO\s+\"?PUBLIC\"?", sql, re.I)
    assert not re.search(r"\bSYNONYM\b", sql, re.I)
    assert "'*'" not in sql and "*:" not in sql
    grants = re.findall(r"^GRANT .*$", sql, re.M)
    assert grants and all(re.fullmatch(r'GRANT EXECUTE ON "APP"\."[A-Z_]+" TO "[A-Z_]+"', g) for g in grants)


def test_grants_only_to_the_spec_roles(full_spec):
    arts = R.render(full_spec).artifacts
    grants = sorted((a.key for a in arts if a.kind == "grant"))
    assert grants == sorted(
        [f"grant execute on APP.{g} to APP_ADMIN" for g in R.GENERIC]
        + ["grant execute on APP.ORDER_STATUS to APP_READER", "grant execute on APP.ORDER_STATUS to APP_WRITER"]
    )
    g = _by_key(arts)["grant execute on APP.ORDER_STATUS to APP_READER"]
    assert g.drop == ('REVOKE EXECUTE ON "APP"."ORDER_STATUS" FROM "APP_READER"',)
    assert g.order > _by_key(arts)["function APP.ORDER_STATUS"].order


def _permissions(spec):
    return [a for a in R.render(spec).artifacts if a.kind == "java_permission"]


CREDS = ["getenv.AWS_ACCESS_KEY_ID", "getenv.AWS_SECRET_ACCESS_KEY", "getenv.AWS_SESSION_TOKEN"]
IMDS_ENV = ["getenv.AWS_EC2_METADATA_DISABLED", "getenv.AWS_EC2_METADATA_SERVICE_ENDPOINT"]


@pytest.mark.parametrize("source,names", [
    ("imds", ["127.0.0.1:4566", "169.254.169.254:80", *IMDS_ENV]),
    ("environment", ["127.0.0.1:4566", *CREDS]),
    ("default", ["127.0.0.1:4566", "169.254.169.254:80", *CREDS, *IMDS_ENV]),
    ("provider", ["127.0.0.1:4566"]),
])
def test_java_permissions_are_exactly_what_the_credential_source_reads(source, names):
    extra = {"credentials_provider": "com.acme.Creds"} if source == "provider" else {}
    perms = _permissions(make_spec(oracle={"credentials": source, **extra}))
    assert sorted(a.probe_dict["name"] for a in perms) == sorted(names)
    for a in perms:
        (st,) = a.statements
        calls = re.findall(r"^\s*DBMS_JAVA\.GRANT_PERMISSION\(([^;]*)\);", st, re.M)
        kind = "java.net.SocketPermission" if ":" in a.probe_dict["name"] else "java.lang.RuntimePermission"
        action = "connect,resolve" if kind.endswith("SocketPermission") else ""
        assert calls == [f"v_grantee, 'SYS:{kind}', '{a.probe_dict['name']}', '{action}'"]
        assert "v_grantee VARCHAR2(128) := 'APP';" in st and "REVOKE_PERMISSION" in a.drop[0]
    if "169.254.169.254:80" not in names:
        # (the Java sources mention IMDS's address as their default; nothing rendered around them does)
        rendered = R.render(make_spec(oracle={"credentials": source, **extra})).artifacts
        assert "169.254.169.254" not in _all_sql([a for a in rendered if a.kind != "java_source"])


def test_without_an_endpoint_the_servers_endpoint_variables_may_be_read():
    perms = _permissions(Spec.model_validate({"project": "p", "oracle": {"credentials": "environment"}}))
    assert sorted(a.probe_dict["name"] for a in perms) == sorted(
        ["lambda.us-east-1.amazonaws.com:443", "getenv.AWS_ENDPOINT_URL_LAMBDA", "getenv.AWS_ENDPOINT_URL", *CREDS])


@pytest.mark.parametrize(
    ("aws", "expected"),
    [
        ({"region": "us-east-2"}, "lambda.us-east-2.amazonaws.com:443"),
        ({"endpoint_url": "https://vpce-1.lambda.eu-west-1.vpce.amazonaws.com"}, "vpce-1.lambda.eu-west-1.vpce.amazonaws.com:443"),
        ({"endpoint_url": "http://localstack:4566/"}, "localstack:4566"),
        ({"endpoint_url": "http://10.0.0.5"}, "10.0.0.5:80"),
    ],
)
def test_endpoint_host_port(aws, expected):
    spec = Spec.model_validate({"project": "p", "aws": aws})
    assert R.endpoint_host_port(spec) == expected
    sockets = [a.probe_dict["name"] for a in _permissions(spec) if a.probe_dict["permission"].endswith("SocketPermission")]
    assert expected in sockets and set(sockets) <= {expected, "169.254.169.254:80"}


def test_schema_default_is_the_connecting_user():
    spec = Spec.model_validate({"project": "p", "functions": [{"name": "f", "lambda": "echo", "roles": ["r"]}]})
    arts = _by_key(R.render(spec).artifacts)
    assert arts["function F"].statements[0].startswith('CREATE OR REPLACE FUNCTION "F"\n')
    perm = next(a for a in arts.values() if a.kind == "java_permission")
    assert "SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')" in perm.statements[0]


def test_generic_functions_signatures_and_authid(full_spec):
    arts = _by_key(R.render(full_spec).artifacts)
    heads = {
        "AWSLAMBDA_FN": "(fn_name IN VARCHAR2, fn_argsJson IN VARCHAR2)\nRETURN VARCHAR2",
        "AWSLAMBDA_FN_ASYNC": "(fn_name IN VARCHAR2, fn_argsJson IN VARCHAR2)\nRETURN VARCHAR2",
        "AWSLAMBDA_FN_CLOB": "(fn_name IN VARCHAR2, fn_argsJson IN CLOB)\nRETURN CLOB",
        "AWSLAMBDA_FN_ASYNC_CLOB": "(fn_name IN VARCHAR2, fn_argsJson IN CLOB)\nRETURN VARCHAR2",
    }
    for name, head in heads.items():
        (st,) = arts[f"function APP.{name}"].statements
        assert st.startswith(f'CREATE OR REPLACE FUNCTION "APP"."{name}"{head}\nAUTHID DEFINER\n'), st
    callspecs = arts["package APP.SQLAMBDA_JAVA"].statements[1]
    for sig in (
        "'sqlambda.LambdaInvoke.invoke_sync(java.lang.String, java.lang.String) return java.lang.String'",
        "'sqlambda.LambdaInvoke.invoke_async(java.lang.String, java.lang.String) return int'",
        "'sqlambda.LambdaInvoke.invoke_sync_clob(java.lang.String, java.sql.Clob) return java.sql.Clob'",
        "'sqlambda.LambdaInvoke.invoke_async_clob(java.lang.String, java.sql.Clob) return int'",
        "'sqlambda.LambdaInvoke.configure(java.lang.String, java.lang.String)'",
    ):
        assert f"AS LANGUAGE JAVA NAME {sig};" in callspecs


def test_runtime_configures_the_java_client_from_the_spec(full_spec):
    st = _by_key(R.render(full_spec).artifacts)["package APP.SQLAMBDA_RT"].statements[1]
    assert '"APP"."SQLAMBDA_JAVA".configure(\'eu-west-1\', \'http://127.0.0.1:4566\');' in st
    assert '"APP"."SQLAMBDA_JAVA".configure_timeouts(2000, 30000);' in st
    assert '"APP"."SQLAMBDA_JAVA".configure_retries(3, 0, 0);' in st
    assert "configure_credentials_provider" not in st
    prov = make_spec(oracle={"credentials": "provider", "credentials_provider": "com.example.Vault"})
    st = _by_key(R.render(prov).artifacts)["package APP.SQLAMBDA_RT"].statements[1]
    assert "configure_credentials_provider('com.example.Vault');" in st


def test_provider_credentials_need_a_class():
    with pytest.raises(ValueError, match="credentials_provider"):
        make_spec(oracle={"credentials": "provider"})


def test_wrapper_is_definer_typed_and_builds_json_with_json_object(full_spec):
    (st,) = _by_key(R.render(full_spec).artifacts)["function APP.ORDER_STATUS"].statements
    assert st.startswith(
        'CREATE OR REPLACE FUNCTION "APP"."ORDER_STATUS"(\n'
        '  "ORDER_ID" IN NUMBER,\n  "NOTE" IN VARCHAR2,\n  "RUSH" IN NUMBER,\n  "DOC" IN CLOB,\n'
        '  "AT" IN TIMESTAMP WITH TIME ZONE\n)\nRETURN VARCHAR2\nAUTHID DEFINER\n'
    )
    assert "KEY 'order_id' VALUE \"ORDER_STATUS\".\"ORDER_ID\"" in st
    assert "KEY 'doc' VALUE \"ORDER_STATUS\".\"DOC\" FORMAT JSON" in st
    assert "KEY 'rush' VALUE CASE \"ORDER_STATUS\".\"RUSH\" WHEN 1 THEN 'true' WHEN 0 THEN 'false' END FORMAT JSON" in st
    assert "NULL ON NULL RETURNING CLOB)" in st
    assert "invoke_sync_clob('echo', v_payload)" in st
    assert "JSON_VALUE(v_result, '$.\"Status\"' RETURNING VARCHAR2(4000) ERROR ON ERROR NULL ON EMPTY)" in st


def test_no_concatenation_builds_json_in_wrappers(full_spec):
    for a in R.render(full_spec).artifacts:
        if a.kind != "function":
            continue
        for st in a.statements:
            for line in st.splitlines():
                if "||" in line:
                    # the only concatenations allowed build error messages, never payloads
                    assert "RAISE_APPLICATION_ERROR" in line or line.strip().startswith("RAISE_APPLICATION_ERROR"), line


def test_boolean_and_path_returns(full_spec):
    (st,) = _by_key(R.render(full_spec).artifacts)["function APP.IS_VIP"].statements
    assert "RETURN NUMBER\n" in st
    assert "'$.\"items\"[0].\"vip\"' RETURNING VARCHAR2(5)" in st
    assert "invoke_sync_clob('arn:aws:lambda:eu-west-1:123456789012:function:vip:live', v_payload)" in st
    assert "RAISE_APPLICATION_ERROR(-20002, 'sqlambda: is_vip: argument customer must be a whole number')" in st


def test_async_wrapper_and_argumentless_signature(full_spec):
    (st,) = _by_key(R.render(full_spec).artifacts)["function APP.NOTIFY"].statements
    assert st.startswith('CREATE OR REPLACE FUNCTION "APP"."NOTIFY"\nRETURN CLOB\n')
    assert "invoke_async_clob('echo', v_payload)" in st
    assert "v_payload := TO_CLOB('{}');" in st


def test_jsonb_return_without_path_returns_the_whole_result(full_spec):
    (st,) = _by_key(R.render(full_spec).artifacts)["function APP.RAW"].statements
    assert "RETURN CLOB\n" in st and "RETURN v_result;" in st and "JSON_VALUE" not in st


def test_identifiers_are_quoted_everywhere(full_spec):
    for a in R.render(full_spec).artifacts:
        for st in a.statements:
            obj = created_object(st)
            if obj is not None:
                head = st.split("\n", 1)[0]
                assert re.search(r'"[^"]+"(\."[^"]+")?', head), head


def test_reserved_names_are_rejected():
    with pytest.raises(RenderError, match="AWSLAMBDA_FN"):
        R.render(Spec.model_validate({"project": "p", "functions": [{"name": "awslambda_fn", "lambda": "x"}]}))
    with pytest.raises(RenderError, match="trigger 'sqlambda_outbox'"):
        R.render(Spec.model_validate({"project": "p", "triggers": [
            {"name": "sqlambda_outbox", "table": "t", "columns": ["id"], "lambda": "x"}]}))


def test_trigger_without_columns_is_a_clear_error():
    spec = Spec.model_validate({"project": "p", "triggers": [{"name": "t", "table": "orders", "lambda": "x"}]})
    with pytest.raises(RenderError, match="needs an explicit 'columns' list"):
        R.render(spec)


def test_immediate_compound_trigger_with_limits(full_spec):
    a = _by_key(R.render(full_spec).artifacts)["trigger APP.ORDERS_NOW"]
    (st,) = a.statements
    assert st.startswith('CREATE OR REPLACE TRIGGER "APP"."ORDERS_NOW"\nFOR INSERT OR DELETE ON "SALES"."ORDERS"\nCOMPOUND TRIGGER\n')
    assert "c_max_rows  CONSTANT PLS_INTEGER := 7;" in st
    env = R.envelope_bytes("sales.orders", "orders_now")
    assert f"c_max_bytes CONSTANT NUMBER := 4096 - {env};" in st
    for section in ("BEFORE STATEMENT IS", "AFTER EACH ROW IS", "AFTER STATEMENT IS", "END AFTER STATEMENT;"):
        assert section in st
    # a batch leaves as soon as it is full (bounded memory), the rest in AFTER STATEMENT
    row_section = st.split("AFTER EACH ROW IS", 1)[1].split("END AFTER EACH ROW;", 1)[0]
    assert "g_rows >= c_max_rows OR g_bytes + v_bytes + 1 > c_max_bytes" in row_section and "send(g_op, g_batch);" in row_section
    assert "send(g_op, g_batch);" in st.split("AFTER STATEMENT IS", 1)[1]
    assert "invoke_sync_clob('echo', v_payload)" in st
    assert "KEY 'id' VALUE :NEW.\"ID\"" in st and "KEY 'id' VALUE :OLD.\"ID\"" in st
    assert a.drop == ('DROP TRIGGER "APP"."ORDERS_NOW"',)


def test_public_schema_of_a_postgres_spec_maps_to_the_current_schema(full_spec):
    (st,) = _by_key(R.render(full_spec).artifacts)["trigger APP.ORDERS_OUT"].statements
    assert 'FOR INSERT OR UPDATE OR DELETE ON "ORDERS"\n' in st
    assert "'public.orders'" in st  # the payload keeps the spec's table name


def test_outbox_trigger_inserts_into_the_queue_without_network(full_spec):
    arts = _by_key(R.render(full_spec).artifacts)
    (st,) = arts["trigger APP.ORDERS_OUT"].statements
    assert "INSERT INTO \"APP\".\"SQLAMBDA_OUTBOX\" (trigger_name, table_name, op, payload)" in st
    assert "FORALL i IN 1 .. g_docs.COUNT" in st
    assert "invoke" not in st
    queue = arts["table APP.SQLAMBDA_OUTBOX"]
    assert queue.replace == "refuse" and "idempotency_key" in queue.statements[0]
    assert "still holds" in queue.drop[0]  # never dropped while it holds events
    pkg = arts["package APP.SQLAMBDA_OUTBOX_PKG"].statements[1]
    assert "FOR UPDATE SKIP LOCKED" in pkg
    assert "drain_batch('orders_out', 'public.orders', 'echo'," in pkg
    assert f"100, 65536 - {R.envelope_bytes('public.orders', 'orders_out')}," in pkg
    assert "5, 200, 60000);" in pkg
    assert "INSERT INTO \"APP\".\"SQLAMBDA_OUTBOX_DEAD\"" in pkg
    job = arts["scheduler job APP.SQLAMBDA_DRAIN"].statements[0]
    assert "job_action      => 'BEGIN \"APP\".\"SQLAMBDA_OUTBOX_PKG\".drain_job; END;'" in job


def test_scheduler_job_only_when_asked():
    arts = R.render(make_spec(oracle={"scheduler_drain": False})).artifacts
    assert not [a for a in arts if a.kind == "scheduler_job"]
    assert [a for a in arts if a.key == "package APP.SQLAMBDA_OUTBOX_PKG"]


def test_render_is_deterministic(full_spec):
    a = [(x.key, x.checksum) for x in R.render(full_spec).artifacts]
    b = [(x.key, x.checksum) for x in R.render(make_spec()).artifacts]
    assert a == b


def test_json_path():
    assert R.json_path(None) == "$"
    assert R.json_path("Status") == '$."Status"'
    assert R.json_path("items[0].id") == '$."items"[0]."id"'
    assert R.json_path("a[1][2].b") == '$."a"[1][2]."b"'


def test_statements_are_shaped_for_the_driver(full_spec):
    """python-oracledb runs one statement per execute: plain SQL must not end with ';' (ORA-00933),
    PL/SQL must end with 'END;', a Java source with its last '}'; nothing ends with SQL*Plus's '/'."""
    from sqlambda.targets.oracle.script import is_block

    for a in R.render(full_spec).artifacts:
        for st in (*a.statements, *a.drop):
            assert st == st.strip() and not st.endswith("/"), a.key
            if a.kind == "java_source" and st.startswith("CREATE"):
                assert st.endswith("}"), a.key
            elif is_block(st):
                assert re.search(r"\bEND( [A-Za-z_]+)?;$", st), (a.key, st[-40:])
            else:
                assert not st.endswith(";"), (a.key, st[-40:])


def _trigger_spec(columns: int, delivery: str, name_len: int = 10) -> Spec:
    return Spec.model_validate({"project": "p", "triggers": [
        {"name": "wide", "table": "app.wide", "columns": [f"c{i:0{name_len - 1}d}" for i in range(columns)],
         "lambda": "echo", "delivery": delivery, "events": ["insert", "update", "delete"]}]})


@pytest.mark.parametrize("delivery", ["immediate", "outbox"])
def test_a_trigger_over_oracles_32k_is_refused_at_render(delivery):
    # each column is named twice per trigger (the new and the old image, each built once): 300 fit
    arts = R.render(_trigger_spec(300, delivery)).artifacts
    (trigger,) = [a for a in arts if a.kind == "trigger"]
    assert max(len(st.encode()) for st in trigger.statements) <= R.TRIGGER_LIMIT
    with pytest.raises(RenderError, match=r"triggers\.wide: the rendered trigger is [\d,]+ bytes, over Oracle's limit"):
        R.render(_trigger_spec(600, delivery))


def test_trigger_memory_is_bounded_by_one_batch():
    imm = "\n".join(a.statements[0] for a in R.render(_trigger_spec(3, "immediate")).artifacts if a.kind == "trigger")
    row_part = imm.split("AFTER EACH ROW IS", 1)[1].split("END AFTER EACH ROW;", 1)[0]
    assert "send(g_op, g_batch);" in row_part  # a full batch leaves during the statement
    assert "TABLE OF" not in imm  # no collection of every row's event
    out = "\n".join(a.statements[0] for a in R.render(_trigger_spec(3, "outbox")).artifacts if a.kind == "trigger")
    row_part = out.split("AFTER EACH ROW IS", 1)[1].split("END AFTER EACH ROW;", 1)[0]
    assert "IF g_docs.COUNT >= c_flush_rows OR g_chars >= c_flush_chars THEN" in row_part and "flush;" in row_part
    assert f"c_flush_rows  CONSTANT PLS_INTEGER := {R.OUTBOX_FLUSH_ROWS};" in out


def test_the_drainer_never_commits_the_callers_transaction(full_spec):
    pkg = next(a for a in R.render(full_spec).artifacts if a.key.endswith("SQLAMBDA_OUTBOX_PKG"))
    body = pkg.statements[-1]
    for unit in ("FUNCTION drain_batch(", "FUNCTION retry_dead("):
        part = body.split(unit, 1)[1].split(" IS\n", 1)[1].lstrip()
        assert part.startswith("PRAGMA AUTONOMOUS_TRANSACTION;"), unit
    assert "ROLLBACK;  -- an autonomous transaction must end" in body


def test_a_java_permission_granted_through_a_role_counts(full_spec):
    perm = next(a for a in R.render(full_spec).artifacts if a.kind == "java_permission")
    assert "FROM DBA_JAVA_POLICY WHERE grantee IN (SELECT role FROM SESSION_ROLES" in perm.statements[0]
    assert "FROM USER_JAVA_POLICY" in perm.statements[0]  # direct grants, readable by anyone


@pytest.mark.parametrize("concurrency,ok", [(None, True), (1, True), (2, False), (8, False)])
def test_batch_concurrency_is_refused_on_oracle_unless_one(concurrency, ok):
    batch = {"max_rows": 10} if concurrency is None else {"max_rows": 10, "concurrency": concurrency}
    spec = Spec.model_validate({"project": "p", "triggers": [
        {"name": "par", "table": "app.t", "lambda": "echo", "delivery": "immediate", "columns": ["id"], "batch": batch}]})
    if ok:
        assert any(a.kind == "trigger" for a in R.render(spec).artifacts)
    else:
        with pytest.raises(RenderError, match=r"triggers\.par\.batch\.concurrency: \d+ batches in flight at once is a PostgreSQL feature"):
            R.render(spec)


def _modernize_spec(**entry):
    return Spec.model_validate({"project": "m", "modernize": [{"function": "public.price_quote(text, integer, text)",
                                                               "lambda": "price_quote", **entry}]})


def test_modernize_renders_a_router_per_stage_and_refuses_what_oracle_cannot_do():
    from sqlambda.errors import RenderError

    arts = {a.key: a for a in R.render(_modernize_spec(stage="cutover")).artifacts}
    entry = arts["modernize PRICE_QUOTE"]
    (statement,) = entry.statements
    # the spec's PostgreSQL type names become the DATA_TYPEs USER_ARGUMENTS shows, checked in the database
    assert "p_arg_types => 'VARCHAR2,NUMBER,VARCHAR2'" in statement and "p_stage     => 'cutover'" in statement
    assert 'call_lambda(\'PRICE_QUOTE\', v_args)' in statement and '"PRICE_QUOTE$ORIG"' not in statement
    assert "release_function" in entry.drop[0]
    assert {"table SQLAMBDA_MODERNIZE", "package SQLAMBDA_MODERNIZE_PKG"} <= set(arts)
    record = R.render(_modernize_spec(stage="record")).artifacts
    assert any('"PRICE_QUOTE$ORIG"%CALL%' in s for a in record for s in a.statements)
    with pytest.raises(RenderError, match="shadow is not available on Oracle"):
        R.render(_modernize_spec(stage="shadow", side_effects="none"))
    with pytest.raises(RenderError, match="is in schema SALES"):
        R.render(Spec.model_validate({"project": "m", "modernize": [
            {"function": "sales.price_quote(text)", "lambda": "price_quote"}]}))
