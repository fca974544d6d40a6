"""The least-privilege IAM policy for a spec: ``lambda:InvokeFunction`` on exactly what it calls.

Owns turning spec functions, triggers and modernize entries into Lambda ARNs (plain names become ARNs in the spec's
region and account; a qualifier becomes part of the ARN, because IAM matches a qualified Invoke
against the qualified ARN) and the policy document. Must not call AWS.
"""

from __future__ import annotations

from sqlambda.spec.model import Spec


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


def iam_policy(spec: Spec, *, region: str | None = None, account_id: str | None = None) -> dict:
    arns = lambda_arns(spec, region=region, account_id=account_id)
    statements = []
    if arns:
        statements.append({"Sid": "SqlambdaInvoke", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arns})
    return {"Version": "2012-10-17", "Statement": statements}
