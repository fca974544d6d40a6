"""The Java credential chain: configured provider, environment, and IMDSv2
against a tiny instance-metadata server run by the test (Python ``http.server``).

The metadata server behaves like EC2's with IMDSv2 enforced: every GET needs the token a PUT
handed out, or it answers 401. Credentials carry an Expiration; the chain must reuse them while
they are fresh and fetch new ones once they are inside the refresh window.
"""

from __future__ import annotations

import datetime as dt
import json

from imds_fake import ROLE, _creds_doc


def _resolve(java_build, n: int, *, props=None, env=None) -> list[dict]:
    proc = java_build.run("InvokeProbe", "creds", str(n), props=props, env=env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_imdsv2_token_is_required_and_role_credentials_refresh(java_build, imds):
    # A expires in 2 minutes: usable, but inside the 5-minute refresh window, so the next resolve
    # must fetch again; B lasts an hour, so the resolve after that must reuse it.
    imds.credentials = [_creds_doc("AAAA", dt.timedelta(minutes=2)), _creds_doc("BBBB", dt.timedelta(hours=1))]
    got = _resolve(java_build, 3, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})

    assert [g["ok"] for g in got] == [True, True, True], got
    assert [g["akid"] for g in got] == ["ASIAAAAA", "ASIABBBB", "ASIABBBB"]
    assert got[1]["token"] == "session-BBBB" and got[1]["secret"] == "secret-BBBB"
    assert got[0]["source"] == f"imds:{ROLE}"
    assert imds.served == 2, "fresh credentials must be cached, stale ones refreshed"

    puts = [r for r in imds.requests if r[0] == "PUT"]
    gets = [r for r in imds.requests if r[0] == "GET"]
    assert puts and all(ttl and int(ttl) > 0 for _, _, ttl in puts)
    assert imds.requests[0][0] == "PUT", "IMDSv2: the token comes before any GET"
    assert all(token in {f"tok-{i}" for i in range(1, imds.issued + 1)} for _, _, token in gets)
    assert len(puts) == 1, "the session token is reused while valid"


def test_an_expired_metadata_token_is_replaced(java_build, imds):
    # The server forgets every token right after serving A (as if its TTL ran out), so the
    # refresh that follows meets a 401 and must fetch a new token, not fail or fall back to v1.
    imds.credentials = [_creds_doc("CCCC", dt.timedelta(minutes=1)), _creds_doc("DDDD", dt.timedelta(hours=1))]
    imds.revoke_after_serving = 1
    got = _resolve(java_build, 2, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
    assert [g["akid"] for g in got] == ["ASIACCCC", "ASIADDDD"], got
    calls = [(m, p) for m, p, _ in imds.requests]
    assert calls.count(("PUT", "/latest/api/token")) == 2, imds.requests
    assert imds.unauthorized == 1, imds.requests


def test_imdsv1_only_server_gives_a_clear_error_and_no_v1_fallback(java_build, imds):
    imds.v1_only = True
    imds.credentials = [_creds_doc("EEEE", dt.timedelta(hours=1))]
    got = _resolve(java_build, 1, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
    assert got[0]["ok"] is False
    assert got[0]["kind"] == "credentials"
    assert "IMDSv2" in got[0]["message"] and "403" in got[0]["message"]
    assert not [r for r in imds.requests if r[0] == "GET"], "must never fall back to IMDSv1"


def test_environment_beats_imds_and_system_properties_are_never_read(java_build, imds):
    """Any Oracle session can set Java system properties for itself (DBMS_JAVA.SET_PROPERTY): they
    must never choose the credentials or the metadata server a definer's call signs with."""
    imds.credentials = [_creds_doc("FFFF", dt.timedelta(hours=1))]
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
           "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-tok"}
    attacker = {"aws.accessKeyId": "AKIAPROP", "aws.secretAccessKey": "prop-secret", "aws.sessionToken": "prop-tok",
                "sqlambda.imdsEndpoint": "http://127.0.0.1:9", "sqlambda.imdsDisabled": "true"}

    from_env = _resolve(java_build, 1, props=attacker, env=env)[0]
    assert (from_env["akid"], from_env["source"], from_env["token"]) == ("AKIAENV", "environment", "env-tok")
    assert imds.requests == [], "instance metadata is only asked when nothing earlier answers"
    from_imds = _resolve(java_build, 1, props=attacker, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})[0]
    assert from_imds["akid"] == "ASIAFFFF" and imds.served == 1


def test_half_a_key_pair_is_an_error_that_does_not_show_the_key(java_build, imds):
    got = _resolve(java_build, 1, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
                                       "AWS_ACCESS_KEY_ID": "AKIASECRETLOOKING"})[0]
    assert got["ok"] is False and got["kind"] == "credentials"
    assert "AWS_SECRET_ACCESS_KEY" in got["message"]
    assert "AKIASECRETLOOKING" not in got["message"]


def test_no_source_at_all_is_a_clear_error(java_build):
    got = _resolve(java_build, 1, env={"AWS_EC2_METADATA_DISABLED": "true"})[0]
    assert got["ok"] is False and got["kind"] == "credentials"
    assert "AWS_ACCESS_KEY_ID" in got["message"] and "instance metadata is disabled" in got["message"]
