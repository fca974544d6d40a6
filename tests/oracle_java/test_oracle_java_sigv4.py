"""sqlambda.SigV4 (Java) signs exactly like botocore's SigV4Auth.

Hundreds of requests are generated from a seeded random generator (hypothesis is not a
dependency): methods, paths with reserved, percent-encoded, unicode, dot and empty segments,
query strings with repeated keys, empty values and reserved characters, headers with odd case
and whitespace, unicode and binary bodies, with and without session tokens. All are signed in
ONE JVM run and compared with botocore signing the same request at the same instant.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import string
from unittest import mock
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

N_REQUESTS = 500
SEED = 20240611

PATH_ALPHABET = string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@ %/?#[]\"<>^`{|}" + "é中😀ß"
QUERY_ALPHABET = string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@/? %#[]é中😀"
SUB_DELIMS = "!$&'()*+,;=:@"


def _word(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def _path(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return ""
    segments = []
    for _ in range(rng.randint(0, 6)):
        r = rng.random()
        if r < 0.08:
            segments.append(rng.choice([".", ".."]))
        elif r < 0.14:
            segments.append("")  # a double slash
        else:
            # Either strict encoding or leaving sub-delimiters raw, as real clients do.
            safe = rng.choice(["", SUB_DELIMS])
            segments.append(quote(_word(rng, PATH_ALPHABET, 1, 12), safe=safe))
    path = "/" + "/".join(segments)
    if rng.random() < 0.2:
        path += "/"
    return path


def _query(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return ""
    keys = [_word(rng, QUERY_ALPHABET, 1, 6) for _ in range(rng.randint(1, 4))]
    parts = []
    for _ in range(rng.randint(1, 7)):
        key = quote(rng.choice(keys), safe="-_.~")  # repeated keys are common
        r = rng.random()
        if r < 0.15:
            parts.append(key)  # no '='
        elif r < 0.3:
            parts.append(key + "=")  # empty value
        else:
            parts.append(key + "=" + quote(_word(rng, QUERY_ALPHABET, 0, 10), safe="-_.~"))
    return "?" + "&".join(parts)


def _headers(rng: random.Random) -> dict[str, str]:
    names = ["Content-Type", "X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Target",
             "X-Amz-Client-Context", "Accept", "User-Agent", "Connection", "Expect", "X-Amzn-Trace-Id"]
    names += ["X-Custom-" + _word(rng, string.ascii_letters, 1, 6) for _ in range(3)]
    chosen, seen = {}, set()
    for name in rng.sample(names, rng.randint(0, 6)):
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        name = "".join(c.upper() if rng.random() < 0.3 else c for c in name)
        value = _word(rng, string.ascii_letters + string.digits + "  \t,;=/:-", 0, 20)
        if rng.random() < 0.3:
            value = "  " + value + " \t "
        chosen[name] = value
    return chosen


def _body(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.2:
        return b""
    if r < 0.35:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    text = _word(rng, string.printable + "é中😀ßΩ\u2028", 1, 200)
    return ('{"k": "%s"}' % text).encode("utf-8")


def generate_requests(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        scheme = rng.choice(["http", "https"])
        host = rng.choice(["lambda.us-east-1.amazonaws.com", "LocalHost", "127.0.0.1", "Example.COM"])
        port = rng.choice([None, None, 443 if scheme == "https" else 80, rng.randint(1024, 65535)])
        netloc = host if port is None else f"{host}:{port}"
        token = None
        if rng.random() < 0.5:
            token = base64.b64encode(rng.randbytes(rng.randint(16, 120))).decode()
        out.append({
            "method": rng.choice(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "post"]),
            "url": f"{scheme}://{netloc}{_path(rng)}{_query(rng)}",
            "region": rng.choice(["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"]),
            "service": rng.choice(["lambda", "execute-api", "sts", "kinesis"]),
            "access_key": "AKIA" + _word(rng, string.ascii_uppercase + string.digits, 16, 16),
            "secret_key": _word(rng, string.ascii_letters + string.digits + "/+", 40, 40),
            "token": token,
            "when": dt.datetime(2000, 1, 1) + dt.timedelta(seconds=rng.randint(0, 30 * 365 * 86400)),
            "headers": _headers(rng),
            "body": _body(rng),
        })
    return out


def botocore_authorization(req: dict) -> str:
    request = AWSRequest(method=req["method"], url=req["url"], data=req["body"], headers=dict(req["headers"]))
    creds = Credentials(req["access_key"], req["secret_key"], req["token"])
    # botocore.auth reads the clock through botocore.compat.get_current_datetime (imported by name).
    with mock.patch("botocore.auth.get_current_datetime", return_value=req["when"]):
        SigV4Auth(creds, req["service"], req["region"]).add_auth(request)
    return request.headers["Authorization"]


def _b64(value: str | bytes) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).decode("ascii")


def harness_line(req: dict) -> str:
    epoch_ms = int(req["when"].replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    headers = "".join(f"{k}\n{v}\n" for k, v in req["headers"].items())
    fields = [req["method"], req["url"], req["region"], req["service"], req["access_key"],
              req["secret_key"], req["token"] or "", str(epoch_ms), headers, req["body"]]
    return " ".join(_b64(f) for f in fields)


def test_generator_covers_the_hard_cases():
    reqs = generate_requests(N_REQUESTS, SEED)
    urls = [r["url"] for r in reqs]
    assert any("/../" in u or u.endswith("/..") for u in urls)
    assert any("//" in u.split("://", 1)[1] for u in urls)
    assert any("%25" in u for u in urls)  # a literal '%' in a path or query
    assert any("%F0%9F%98%80" in u for u in urls)  # an emoji
    assert any(r["token"] for r in reqs) and any(not r["token"] for r in reqs)
    assert any("\t" in v for r in reqs for v in r["headers"].values())
    assert any(len(set(p.split("=")[0] for p in u.split("?", 1)[1].split("&")))
               < len(u.split("?", 1)[1].split("&")) for u in urls if "?" in u)


def test_java_signatures_match_botocore(java_build):
    reqs = generate_requests(N_REQUESTS, SEED)
    expected = [botocore_authorization(r) for r in reqs]
    proc = java_build.run("SigV4Harness", input="\n".join(harness_line(r) for r in reqs) + "\n")
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.splitlines()
    assert len(got) == len(reqs)
    mismatches = [(r["method"], r["url"], sorted(r["headers"]), e, g)
                  for r, e, g in zip(reqs, expected, got) if e != g]
    assert not mismatches, f"{len(mismatches)} of {len(reqs)} differ; first: {mismatches[:3]}"


def test_a_known_aws_example_signature(java_build):
    """AWS's documented GET example (IAM ListUsers) pins the algorithm independently of botocore."""
    req = {
        "method": "GET",
        "url": "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        "region": "us-east-1", "service": "iam",
        "access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "token": None, "when": dt.datetime(2015, 8, 30, 12, 36, 0),
        "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        "body": b"",
    }
    proc = java_build.run("SigV4Harness", input=harness_line(req) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )
