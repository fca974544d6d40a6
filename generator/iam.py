"""The least-privilege IAM policy for a spec: ``lambda:InvokeFunction`` on exactly what it calls,
and each sink's one write action on exactly the sinks it sends to.

Owns turning spec functions, triggers and modernize entries into Lambda ARNs (plain names become ARNs in the spec's
region and account; a qualifier becomes part of the ARN, because IAM matches a qualified Invoke
against the qualified ARN), sinks into their ARNs (a queue URL's account is the URL's), and the
policy document. A sink counts when a trigger streams to it or ``send_after_commit`` may name it.
Must not call AWS.
"""

from __future__ import annotations

from sqlambda.spec.model import Sink, Spec


def lambda_arn(ref: str, qualifier: str | None, region: str, account_id: str) -> str:
    if ref.startswith("arn:"):
        parts = ref.split(":")
        base = ":".join(parts[:7])
        q = parts[7] if len(parts) > 7 else qualifier
    else:
        name, _, inline_q = ref.partition(":")
        base = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
        q = inline_q or qualifier
    return f"{base}:{q}" if q else base


def lambda_arns(spec: Spec, *, region: str | None = None, account_id: str | None = None) -> list[str]:
    """Every ARN the spec's functions and triggers invoke: sorted, without duplicates."""
    region = region or spec.aws.region
    account_id = account_id or spec.aws.account_id
    arns = {lambda_arn(f.lambda_, f.qualifier, region, account_id) for f in spec.functions}
    arns |= {lambda_arn(t.lambda_, None, region, account_id) for t in spec.triggers if t.lambda_}
    # a modernize entry in stage record or rollback calls nothing yet, but its next stage will: the
    # policy is written once for the whole migration, not re-deployed at every stage
    arns |= {lambda_arn(m.lambda_, m.qualifier, region, account_id) for m in spec.modernize}
    return sorted(arns)


#: per sink kind: the policy statement's Sid and the actions the drainer needs (SendMessageBatch is
#: authorized as sqs:SendMessage; GetQueueUrl resolves a queue given by name)
SINK_ACTIONS = {
    "kinesis": ("SqlambdaKinesis", ["kinesis:PutRecords"]),
    "firehose": ("SqlambdaFirehose", ["firehose:PutRecordBatch"]),
    "sqs": ("SqlambdaSqs", ["sqs:GetQueueUrl", "sqs:SendMessage"]),
    "eventbridge": ("SqlambdaEvents", ["events:PutEvents"]),
}


def sink_arn(sink: Sink, region: str, account_id: str) -> str:
    target = sink.target
    if target.startswith("arn:"):
        return target
    if sink.kind == "kinesis":
        return f"arn:aws:kinesis:{region}:{account_id}:stream/{target}"
    if sink.kind == "firehose":
        return f"arn:aws:firehose:{region}:{account_id}:deliverystream/{target}"
    if sink.kind == "eventbridge":
        return f"arn:aws:events:{region}:{account_id}:event-bus/{target}"
    if target.startswith(("http://", "https://")):  # https://sqs.<region>.amazonaws.com/<account>/<name>
        account, name = target.rstrip("/").split("/")[-2:]
        return f"arn:aws:sqs:{region}:{account}:{name}"
    return f"arn:aws:sqs:{region}:{account_id}:{target}"


def used_sinks(spec: Spec) -> list[Sink]:
    """The sinks something sends to: a trigger's, or any with send_after_commit installed."""
    named = {t.sink.lower() for t in spec.triggers if t.sink}
    return [s for s in spec.sinks if spec.send_after_commit or s.name.lower() in named]


def iam_policy(spec: Spec, *, region: str | None = None, account_id: str | None = None) -> dict:
    arns = lambda_arns(spec, region=region, account_id=account_id)
    statements = []
    if arns:
        statements.append({"Sid": "SqlambdaInvoke", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arns})
    region = region or spec.aws.region
    account_id = account_id or spec.aws.account_id
    by_kind: dict[str, set[str]] = {}
    for sink in used_sinks(spec):
        by_kind.setdefault(sink.kind, set()).add(sink_arn(sink, region, account_id))
    for kind, (sid, actions) in SINK_ACTIONS.items():
        if kind in by_kind:
            statements.append({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": sorted(by_kind[kind])})
    return {"Version": "2012-10-17", "Statement": statements}
