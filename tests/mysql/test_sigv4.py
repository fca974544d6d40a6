"""The plugin's SigV4 signer and Invoke path against botocore's, on thousands of generated requests.

The plugin signs by itself (OpenSSL's SHA-256/HMAC, see mysql_udf/sqlambda_udf.c for why), so this
compares, byte for byte, the Authorization header it computes with the one botocore computes for
the same request: random function names (plain, name:qualifier, ARNs of every partition), payloads
of random bytes and sizes, regions, hosts with and without ports, credentials with and without a
session token, all three invocation types and random times. The plugin is loaded with ctypes; its
two exported helpers are the very functions the UDF calls.
"""

from __future__ import annotations

import ctypes
import random
import string
from datetime import datetime, timezone
from urllib.parse import quote

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sqlambda.targets.mysql import plugin


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    built = plugin.build(tmp_path_factory.mktemp("udf"))
    so = ctypes.CDLL(str(built.path))
    so.sqlambda_sigv4.restype = ctypes.c_int
    so.sqlambda_sigv4.argtypes = [ctypes.c_char_p] * 9 + [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    so.sqlambda_invoke_path.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return so


def _name(rng: random.Random) -> str:
    base = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(rng.randint(1, 64)))
    kind = rng.randint(0, 3)
    if kind == 1:
        return f"{base}:{rng.choice(['$LATEST', 'prod', '7'])}"
    if kind >= 2:
        part = rng.choice(["aws", "aws-cn", "aws-us-gov"])
        region = rng.choice(["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1", "us-gov-west-1"])
        arn = f"arn:{part}:lambda:{region}:{rng.randint(10**11, 10**12 - 1)}:function:{base}"
        return arn + (f":{rng.choice(['live', '$LATEST', '12'])}" if kind == 3 else "")
    return base


def _sign_botocore(monkeypatch, host, path, when, region, creds, invocation_type, payload) -> str:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    headers = {"X-Amz-Invocation-Type": invocation_type} if invocation_type else {}
    req = AWSRequest(method="POST", url=f"http://{host}{path}", data=payload, headers=headers)
    botocore.auth.SigV4Auth(creds, "lambda", region).add_auth(req)
    return req.headers["Authorization"]


def test_invoke_path_matches_botocore_serializer(lib):
    rng = random.Random(7)
    for _ in range(2000):
        name = _name(rng)
        out = ctypes.create_string_buffer(1024)
        assert lib.sqlambda_invoke_path(name.encode(), len(name.encode()), out, 1024) == 0
        # botocore serializes the FunctionName label with every reserved character encoded
        assert out.value.decode() == f"/2015-03-31/functions/{quote(name, safe='-_.~')}/invocations"


def test_signature_equals_botocore_on_thousands_of_requests(lib, monkeypatch):
    rng = random.Random(2026)
    compared = 0
    for i in range(3000):
        name = _name(rng)
        path_buf = ctypes.create_string_buffer(1024)
        lib.sqlambda_invoke_path(name.encode(), len(name.encode()), path_buf, 1024)
        path = path_buf.value.decode()
        host = rng.choice(["lambda.us-east-1.amazonaws.com", "127.0.0.1:4566", "localhost:9001",
                           "vpce-0a1b.lambda.eu-west-1.vpce.amazonaws.com"])
        region = rng.choice(["us-east-1", "eu-central-1", "ap-northeast-3", "cn-northwest-1"])
        when = datetime(2020 + rng.randint(0, 10), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                        rng.randint(0, 59), rng.randint(0, 59), tzinfo=timezone.utc)
        akid = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        secret = "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
        token = None if i % 3 else "".join(rng.choice(string.ascii_letters + string.digits + "+/=") for _ in range(rng.randint(100, 900)))
        itype = rng.choice(["RequestResponse", "Event", "DryRun"])
        payload = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 17, 300, 5000])))
        expected = _sign_botocore(monkeypatch, host, path, when, region, Credentials(akid, secret, token), itype, payload)
        out = ctypes.create_string_buffer(2048)
        rc = lib.sqlambda_sigv4(host.encode(), path.encode(), when.strftime("%Y%m%dT%H%M%SZ").encode(), region.encode(),
                                b"lambda", akid.encode(), secret.encode(), token.encode() if token else None,
                                itype.encode(), payload, len(payload), out, 2048)
        assert rc == 0
        assert out.value.decode() == expected, (name, host, region, itype)
        compared += 1
    assert compared == 3000


def test_long_trigger_names_stay_distinct_per_event():
    from sqlambda.targets.mysql.render import trigger_name

    long = "t" * 60
    names = {trigger_name(long, e) for e in ("insert", "update", "delete")}
    assert len(names) == 3 and all(len(n) <= 64 for n in names)
    assert trigger_name(long + "a", "insert") != trigger_name(long + "b", "insert")
    assert trigger_name("orders_out", "insert") == "sqlambda_orders_out_insert"
