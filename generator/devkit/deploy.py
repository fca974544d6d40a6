"""Packaging and deployment of the example Lambdas under ``lambdas/`` (and of ad-hoc test handlers).

Owns: the deterministic zip (same files, same bytes: sorted entries, a fixed timestamp and fixed
permissions, no caches), the optional per-function manifest ``lambdas/<name>/lambda.json``
(handler, runtime, timeout, memory, environment), and create-or-update of functions, versions and
aliases through boto3. It works unchanged against ``sqlambda local`` and real AWS: only the
endpoint differs. Must not start or stop the local stack.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Callable

from sqlambda import resources
from sqlambda.errors import DeployError, UsageError

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".pytest_cache", "tests"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
DEFAULT_ROLE = "sqlambda-lambda-exec"
_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def build_zip(folder: Path) -> bytes:
    """Deterministic zip of a folder: the same code always gives the same bytes."""
    folder = Path(folder)
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_dir() or any(p in _SKIP_DIRS for p in rel.parts) or path.suffix in _SKIP_SUFFIXES:
            continue
        if rel.name in ("lambda.json", "policy.json"):  # deploy settings and IAM docs, not code
            continue
        files.append((rel.as_posix(), path.read_bytes()))
    return zip_files(files)


def zip_files(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def code_sha256(zip_bytes: bytes) -> str:
    """Lambda's CodeSha256: base64 of the SHA-256 of the zip."""
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def available() -> list[str]:
    root = resources.folder("lambdas")
    return sorted(p.name for p in root.iterdir() if (p / "handler.py").exists())


def _manifest(folder: Path) -> dict:
    path = folder / "lambda.json"
    base = {"handler": "handler.handler", "runtime": "python3.11", "timeout": 30, "memory": 256, "environment": {}}
    if path.exists():
        try:
            base.update(json.loads(path.read_text()))
        except ValueError as exc:
            raise UsageError(f"{path}: not valid JSON: {exc}") from None
    return base


def _client(service: str, endpoint_url: str | None, region: str | None):
    import boto3

    return boto3.client(service, endpoint_url=endpoint_url or None,
                        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def ensure_role(endpoint_url: str | None, region: str | None) -> str:
    """The execution role to use when none is given: found or created by name."""
    iam = _client("iam", endpoint_url, region)
    try:
        return iam.get_role(RoleName=DEFAULT_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=DEFAULT_ROLE, AssumeRolePolicyDocument=_TRUST,
                              Description="execution role of the sqlambda example Lambdas")["Role"]["Arn"]
        try:
            iam.attach_role_policy(RoleName=DEFAULT_ROLE, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
        except iam.exceptions.NoSuchEntityException:
            pass  # moto does not load AWS-managed policies by default; real IAM always has this one
        return arn


def _upsert(lam, name: str, zip_bytes: bytes, *, role_arn: str, handler: str, runtime: str, timeout: int,
            memory: int, environment: dict, reserved_concurrency: int | None = None) -> dict:
    sha = code_sha256(zip_bytes)
    try:
        current = lam.get_function(FunctionName=name)["Configuration"]
    except lam.exceptions.ResourceNotFoundException:
        current = None
    if current is None:
        cfg = lam.create_function(FunctionName=name, Runtime=runtime, Role=role_arn, Handler=handler,
                                  Code={"ZipFile": zip_bytes}, Timeout=timeout, MemorySize=memory,
                                  Environment={"Variables": environment}, Publish=False)
        action = "created"
    else:
        action = "unchanged"
        if current.get("CodeSha256") != sha:
            lam.update_function_code(FunctionName=name, ZipFile=zip_bytes)
            action = "updated"
        want = {"Handler": handler, "Timeout": timeout, "MemorySize": memory, "Runtime": runtime}
        have_env = (current.get("Environment") or {}).get("Variables") or {}
        if any(current.get(k) != v for k, v in want.items()) or have_env != environment:
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": environment}, **want)
            action = "updated"
        cfg = lam.get_function(FunctionName=name)["Configuration"]
    if reserved_concurrency is not None:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved_concurrency)
    return {"name": name, "arn": cfg["FunctionArn"], "action": action, "code_sha256": sha}


def _aws_errors(fn):
    """Turn botocore's failures into a DeployError with a hint, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        try:
            return fn(*args, **kwargs)
        except NoCredentialsError:
            raise DeployError("no AWS credentials found", hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile "
                              "(for sqlambda local any value works, e.g. test/test)") from None
        except EndpointConnectionError as exc:
            raise DeployError(f"cannot reach the AWS endpoint: {exc}", hint="is `sqlambda local start` running, and is --endpoint-url right?") from None
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise DeployError(f"{exc.operation_name} refused: {err.get('Code')}: {err.get('Message')}") from None
        except BotoCoreError as exc:
            raise DeployError(str(exc)) from None

    return wrapper


@_aws_errors
def deploy_lambdas(names: list[str] | None = None, endpoint_url: str | None = None, role_arn: str | None = None,
                   alias: str | None = None, region: str | None = None, environment: dict | None = None,
                   timeout: int | None = None, on_deployed: Callable[[dict, int, int], None] | None = None, *,
                   function_name: str | None = None, memory: int | None = None) -> list[dict]:
    """Create or update functions (all the examples when ``names`` is empty); ``on_deployed(row, n,
    total)`` after each one.

    Each of ``names`` is an example (a folder under ``lambdas/``) or the path of a folder of one's
    own laid out the same way. ``function_name`` deploys the one folder under another name (e.g.
    the original sample's ``lambdaReadKinesisStream``); ``environment`` (merged over the folder's
    ``lambda.json``), ``timeout`` and ``memory`` override its settings.
    """
    known = available()
    names = list(names or known)
    folders = []
    for n in names:
        path = Path(n)
        if n in known and not (path.is_dir() and ("/" in n or n.startswith("."))):
            folders.append((n, resources.folder("lambdas") / n))
        elif path.is_dir() and (path / "handler.py").exists():
            folders.append((path.resolve().name, path))
        else:
            raise UsageError(f"{n}: neither an example Lambda ({', '.join(known)}) nor a folder holding handler.py")
    if function_name is not None:
        if len(folders) != 1:
            raise UsageError("--function-name names one function: give exactly one folder")
        folders = [(function_name, folders[0][1])]
    lam = _client("lambda", endpoint_url, region)
    role_arn = role_arn or ensure_role(endpoint_url, region)
    rows = []
    for n, (name, folder) in enumerate(folders, 1):
        started = time.monotonic()
        row = _deploy_folder(lam, name, folder, role_arn=role_arn, alias=alias, environment=environment,
                             timeout=timeout, memory=memory)
        row["seconds"] = round(time.monotonic() - started, 2)
        rows.append(row)
        if on_deployed:
            on_deployed(row, n, len(folders))
    return rows


@_aws_errors
def deploy_folder(folder: str | Path, name: str | None = None, *, endpoint_url: str | None = None,
                  role_arn: str | None = None, alias: str | None = None, region: str | None = None,
                  environment: dict | None = None, timeout: int | None = None) -> dict:
    """Create or update a function from a folder of one's own, laid out like ``lambdas/<name>``
    (``handler.py`` with ``handler(event, context)``, optional ``lambda.json``); named after the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    lam = _client("lambda", endpoint_url, region)
    return _deploy_folder(lam, name or folder.name, folder, role_arn=role_arn or ensure_role(endpoint_url, region),
                          alias=alias, environment=environment, timeout=timeout)


def _deploy_folder(lam, name: str, folder: Path, *, role_arn: str, alias: str | None, environment: dict | None,
                   timeout: int | None, memory: int | None = None) -> dict:
    m = _manifest(folder)
    env = {**m["environment"], **(environment or {})}
    row = _upsert(lam, name, build_zip(folder), role_arn=role_arn, handler=m["handler"], runtime=m["runtime"],
                  timeout=timeout or int(m["timeout"]), memory=memory or int(m["memory"]), environment=env)
    if alias:
        version = lam.publish_version(FunctionName=name)["Version"]
        try:
            lam.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        except lam.exceptions.ResourceNotFoundException:
            lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        row["alias"] = f"{alias} -> {version}"
    return row


@_aws_errors
def deploy_source(function_name: str, source: str, *, endpoint_url: str | None, handler: str = "index.handler",
                  timeout: int = 3, environment: dict | None = None, reserved_concurrency: int | None = None,
                  region: str | None = None, memory: int = 128) -> str:
    """Deploy a one-file handler (tests use it for sleeping, failing or recording handlers)."""
    module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    lam = _client("lambda", endpoint_url, region)
    row = _upsert(lam, function_name, zip_files([(module, source.encode())]), role_arn=ensure_role(endpoint_url, region),
                  handler=handler, runtime="python3.11", timeout=timeout, memory=memory, environment=environment or {},
                  reserved_concurrency=reserved_concurrency)
    return row["arn"]
