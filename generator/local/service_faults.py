"""Service rules of the fault table applied to the data plane of Kinesis, Firehose, SQS and EventBridge.

Owns: recognising the action of a request (``X-Amz-Target`` of the JSON protocols, ``Action`` of an
SQS query-protocol request), answering a whole-request ``throttle`` or ``server_error`` in the
service's own error shape, and for a ``partial`` rule cutting the failed records out of the request
before moto sees it (so they are really not stored) and merging moto's answer for the others with
failure entries at the failed positions, in each API's response shape.

Must not: touch a request no rule fires for (it reaches moto byte for byte), keep state of its own
(the rules and counters live in :class:`~sqlambda.local.faults.FaultTable`), or know Lambda.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Callable
from urllib.parse import parse_qsl, urlencode

from sqlambda.local.faults import FaultTable, ServiceRule
from sqlambda.local.invoke import request_account

#: X-Amz-Target prefix -> the service name the rules use
TARGET_PREFIXES = {"Kinesis_20131202": "Kinesis", "Firehose_20150804": "Firehose", "AmazonSQS": "SQS",
                   "AWSEvents": "EventBridge"}
#: the JSON protocol version each service answers in (its Content-Type)
_JSON_VERSIONS = {"Kinesis": "1.1", "Firehose": "1.1", "SQS": "1.0", "EventBridge": "1.1"}
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/")
_SQS_XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"
_SQS_ENTRY = re.compile(r"^SendMessageBatchRequestEntry\.(?P<n>\d+)\.(?P<rest>.+)$")

#: (status, headers, body), what moto answered or what a rule answers instead
Answer = tuple[int, dict, bytes]
#: calls moto with a (rewritten) request
Forward = Callable[[dict], Answer]


class ServiceFaults:
    """Applies the fault table's service rules; ``handle`` runs for every POST that is not Invoke."""

    def __init__(self, faults: FaultTable, forward: Forward) -> None:
        self.faults = faults
        self.forward = forward

    def handle(self, environ: dict) -> tuple[dict, Answer | None]:
        """(environ to go on with, the answer when a rule fired, else None)."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, operation = target.partition(".")
        service = TARGET_PREFIXES.get(prefix)
        query_params = None
        if service is None:
            if not _is_sqs_query(environ):
                return environ, None
            environ, query_params = _read_form(environ)
            service, operation = "SQS", query_params.get("Action", "")
        action = f"{service}.{operation}"
        self.faults.count_service(action, "requests")
        rule = self.faults.take_service(action)
        if rule is None:
            return environ, None
        self.faults.count_service(action, "faults")
        if rule.kind == "latency":
            time.sleep(rule.ms / 1000.0)
            return environ, None
        environ, _ = _read_body(environ)  # the rule's answer may quote the request (a stream's name)
        ctx = _Context(environ, service, operation, query_params is not None)
        if rule.kind == "throttle":
            self.faults.count_service(action, "throttled")
            return environ, ctx.throttle()
        if rule.kind == "server_error":
            self.faults.count_service(action, "server_errors")
            return environ, ctx.server_error(rule.status)
        if query_params is not None:
            return environ, self._partial_sqs_query(ctx, rule)
        return environ, self._partial_json(ctx, rule, action)

    # -- partial failures -----------------------------------------------------------------------
    def _partial_json(self, ctx: "_Context", rule: ServiceRule, action: str) -> Answer:
        environ, body = _read_body(ctx.environ)
        try:
            request = json.loads(body or b"{}")
            entries = request[_ENTRIES[ctx.service]]
        except (ValueError, KeyError, TypeError):
            entries = None
        if not isinstance(entries, list):
            return self.forward(environ)  # moto answers a malformed request as AWS would
        failed = set(rule.failed_positions(len(entries)))
        if not failed:
            return self.forward(environ)
        self.faults.count_service(action, "records_failed", len(failed))
        kept = [e for i, e in enumerate(entries) if i not in failed]
        stored: dict = {}
        status, headers = 200, {"Content-Type": f"application/x-amz-json-{_JSON_VERSIONS[ctx.service]}",
                                "x-amzn-RequestId": str(uuid.uuid4())}
        if kept:
            data = json.dumps({**request, _ENTRIES[ctx.service]: kept}).encode()
            status, headers, answer = self.forward(_with_body(environ, data))
            if status != 200:
                return status, headers, answer
            stored = json.loads(answer or b"{}")
        merged = _MERGE[ctx.service](ctx, request, entries, failed, stored)
        return status, headers, json.dumps(merged).encode()

    def _partial_sqs_query(self, ctx: "_Context", rule: ServiceRule) -> Answer:
        """SendMessageBatch in the query protocol (form body, XML answer), for older SDKs."""
        environ = ctx.environ
        pairs = parse_qsl(_read_body(environ)[1].decode(), keep_blank_values=True)
        entries: dict[int, list[tuple[str, str]]] = {}
        others: list[tuple[str, str]] = []
        for key, value in pairs:
            m = _SQS_ENTRY.match(key)
            if m:
                entries.setdefault(int(m["n"]), []).append((m["rest"], value))
            else:
                others.append((key, value))
        order = sorted(entries)
        failed = set(rule.failed_positions(len(order)))
        if not failed:
            return self.forward(environ)
        self.faults.count_service("SQS.SendMessageBatch", "records_failed", len(failed))
        kept = [n for i, n in enumerate(order) if i not in failed]
        ids = [dict(entries[n]).get("Id", "") for n in order]
        if kept:
            body = others + [(f"SendMessageBatchRequestEntry.{j}.{rest}", value)
                             for j, n in enumerate(kept, 1) for rest, value in entries[n]]
            status, headers, answer = self.forward(_with_body(environ, urlencode(body).encode()))
            if status != 200:
                return status, headers, answer
            root = ET.fromstring(answer)
        else:
            headers = {"Content-Type": "text/xml"}
            root = ET.fromstring(f'<SendMessageBatchResponse xmlns="{_SQS_XMLNS}"><SendMessageBatchResult/>'
                                 f'<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>'
                                 '</SendMessageBatchResponse>')
        ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        result = root.find(f"{ns}SendMessageBatchResult")
        if result is None:  # not the answer SendMessageBatch gives: pass it on as it is
            return 200, headers, answer if kept else ET.tostring(root)
        for i in sorted(failed):
            entry = ET.SubElement(result, f"{ns}BatchResultErrorEntry")
            for tag, text in (("Id", ids[i]), ("SenderFault", "false"), ("Code", "InternalError"),
                              ("Message", _SQS_FAILED_MESSAGE)):
                ET.SubElement(entry, f"{ns}{tag}").text = text
        return 200, headers, ET.tostring(root, xml_declaration=True, encoding="utf-8", default_namespace=ns.strip("{}") or None)


_ENTRIES = {"Kinesis": "Records", "Firehose": "Records", "SQS": "Entries", "EventBridge": "Entries"}
_SQS_FAILED_MESSAGE = "We encountered an internal error. Please try again."


class _Context:
    """One request a rule fired for: where it goes and how its service words an error."""

    def __init__(self, environ: dict, service: str, operation: str, query_protocol: bool) -> None:
        self.environ, self.service, self.operation, self.query_protocol = environ, service, operation, query_protocol
        m = _SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        self.region = m["region"] if m else "us-east-1"
        self.account = request_account(environ)

    def _error(self, status: int, code: str, message: str, sender: bool) -> Answer:
        request_id = str(uuid.uuid4())
        if self.query_protocol:
            body = (f'<?xml version="1.0"?><ErrorResponse xmlns="{_SQS_XMLNS}"><Error><Type>'
                    f'{"Sender" if sender else "Receiver"}</Type><Code>{code}</Code><Message>{message}</Message>'
                    f'<Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>')
            return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode()
        headers = {"Content-Type": f"application/x-amz-json-{_JSON_VERSIONS[self.service]}", "x-amzn-RequestId": request_id}
        type_ = code
        if self.service == "SQS":
            # SQS speaks JSON for query-compatible clients: the namespaced type plus the query error code
            type_ = f"com.amazonaws.sqs#{code}"
            headers["x-amzn-query-error"] = f"{code};{'Sender' if sender else 'Receiver'}"
        return status, headers, json.dumps({"__type": type_, "message": message}).encode()

    def throttle(self) -> Answer:
        """The service's own throttling error for a whole request (its API reference's status code)."""
        if self.service == "Kinesis":
            name = _json_field(self.environ, "StreamName") or _arn_name(_json_field(self.environ, "StreamARN"))
            return self._error(400, "ProvisionedThroughputExceededException",
                               f"Rate exceeded for stream {name or 'unknown'} under account {self.account}.", True)
        if self.service == "Firehose":
            return self._error(500, "ServiceUnavailableException", "Slow down.", False)
        if self.service == "SQS":
            return self._error(400, "RequestThrottled", "Request is throttled.", True)
        return self._error(400, "ThrottlingException", "Rate exceeded.", True)

    def server_error(self, status: int) -> Answer:
        if status == 503:
            code = "ServiceUnavailableException" if self.service == "Firehose" else "ServiceUnavailable"
        else:
            code = {"Kinesis": "InternalFailureException", "EventBridge": "InternalException"}.get(self.service,
                                                                                                  "InternalFailure")
        return self._error(status, code, "injected fault: the service encountered an internal error", False)

    def kinesis_shard(self, request: dict, record: dict) -> str:
        """The shard a record would have gone to (for the error message AWS writes), best effort."""
        try:
            from moto.kinesis.models import kinesis_backends

            stream = kinesis_backends[self.account][self.region].describe_stream(
                stream_arn=request.get("StreamARN"), stream_name=request.get("StreamName"))
            return stream.get_shard_for_key(record.get("PartitionKey"), record.get("ExplicitHashKey")).shard_id
        except Exception:  # noqa: BLE001 - only the wording of an error message depends on it
            return "shardId-000000000000"


def _merge_kinesis(ctx: _Context, request: dict, entries: list, failed: set[int], stored: dict) -> dict:
    results = iter(stored.get("Records", []))
    stream = request.get("StreamName") or _arn_name(request.get("StreamARN"))
    out = []
    for i, record in enumerate(entries):
        if i in failed:
            out.append({"ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": f"Rate exceeded for shard {ctx.kinesis_shard(request, record)} in stream "
                                        f"{stream} under account {ctx.account}."})
        else:
            out.append(next(results, {}))
    answer = {**stored, "Records": out}
    answer["FailedRecordCount"] = sum(1 for r in out if "ErrorCode" in r)
    return answer


def _merge_firehose(ctx: _Context, request: dict, entries: list, failed: set[int], stored: dict) -> dict:
    results = iter(stored.get("RequestResponses", []))
    out = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."} if i in failed
           else next(results, {}) for i in range(len(entries))]
    answer = {"Encrypted": False, **stored, "RequestResponses": out}
    answer["FailedPutCount"] = sum(1 for r in out if "ErrorCode" in r)
    return answer


def _merge_sqs(ctx: _Context, request: dict, entries: list, failed: set[int], stored: dict) -> dict:
    ours = [{"Id": entries[i].get("Id"), "SenderFault": False, "Code": "InternalError", "Message": _SQS_FAILED_MESSAGE}
            for i in sorted(failed)]
    return {**stored, "Successful": stored.get("Successful", []), "Failed": stored.get("Failed", []) + ours}


def _merge_events(ctx: _Context, request: dict, entries: list, failed: set[int], stored: dict) -> dict:
    results = iter(stored.get("Entries", []))
    out = [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded."} if i in failed
           else next(results, {}) for i in range(len(entries))]
    answer = {**stored, "Entries": out}
    answer["FailedEntryCount"] = sum(1 for r in out if "ErrorCode" in r)
    return answer


_MERGE = {"Kinesis": _merge_kinesis, "Firehose": _merge_firehose, "SQS": _merge_sqs, "EventBridge": _merge_events}


def _is_sqs_query(environ: dict) -> bool:
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return False
    m = _SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return bool(m and m["service"] == "sqs")


def _read_body(environ: dict) -> tuple[dict, bytes]:
    """The body, and an environ whose input can be read again (a request is read once)."""
    cached = environ.get("sqlambda.body")
    if cached is not None:
        return _with_body(environ, cached), cached
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n) if n else b""
    return _with_body(environ, body), body


def _with_body(environ: dict, body: bytes) -> dict:
    environ = dict(environ, CONTENT_LENGTH=str(len(body)))
    environ["wsgi.input"] = io.BytesIO(body)
    environ["sqlambda.body"] = body
    return environ


def _read_form(environ: dict) -> tuple[dict, dict]:
    environ, body = _read_body(environ)
    return environ, dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _json_field(environ: dict, key: str):
    body = environ.get("sqlambda.body")
    if body is None:
        return None
    try:
        return json.loads(body).get(key)
    except (ValueError, AttributeError):
        return None


def _arn_name(arn) -> str | None:
    return arn.rsplit("/", 1)[-1] if isinstance(arn, str) and "/" in arn else None
