"""The one exception hierarchy of sqlambda, and the process exit code of each kind of failure.

Every error a user can cause derives from :class:`SqlambdaError`; the CLI prints its message
(never a traceback) and exits with its ``exit_code``. Codes are fixed and documented in the
README, so scripts can branch on them.
"""

from __future__ import annotations


class SqlambdaError(Exception):
    """Base of every error sqlambda raises on purpose."""

    exit_code = 1
    #: a short machine-readable name used in ``--json`` output
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: structured facts for ``--json`` (e.g. a verify report, a SQLSTATE), so scripts get one document
        self.details = details

    def to_dict(self) -> dict:
        out = {"error": self.kind, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.details:
            out["details"] = self.details
        return out


class UsageError(SqlambdaError):
    """Bad command-line options or arguments."""

    exit_code = 2
    kind = "usage"


class SpecError(SqlambdaError):
    """The spec file is invalid. Carries every problem found, each with file:line:col."""

    exit_code = 3
    kind = "spec"

    def __init__(self, problems: list["SpecProblem"]) -> None:  # noqa: F821 - defined in spec
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        noun = "problem" if len(lines) == 1 else "problems"
        super().__init__(f"invalid spec ({len(lines)} {noun}):\n" + "\n".join("  " + x for x in lines))

    def to_dict(self) -> dict:
        return {"error": self.kind, "problems": [p.to_dict() for p in self.problems]}


class RenderError(SqlambdaError):
    """A template could not be rendered (a bug or a missing value; StrictUndefined)."""

    exit_code = 4
    kind = "render"


class ConnectionFailed(SqlambdaError):
    """The database could not be reached."""

    exit_code = 5
    kind = "connection"


class InstallError(SqlambdaError):
    """DDL failed, the registry disagrees with the catalog, or a lock could not be taken."""

    exit_code = 6
    kind = "install"


class VerifyFailed(SqlambdaError):
    """`verify` found objects missing or changed."""

    exit_code = 7
    kind = "verify"


class InvokeError(SqlambdaError):
    """A Lambda call failed (function error, throttling, timeout, endpoint down)."""

    exit_code = 8
    kind = "invoke"


class LocalStackError(SqlambdaError):
    """The local AWS stack could not start or misbehaved."""

    exit_code = 9
    kind = "local"


class EnvironmentProblem(SqlambdaError):
    """Something the machine must provide is missing (plpython3u, boto3, javac, initdb...)."""

    exit_code = 10
    kind = "environment"


class DoctorFailed(SqlambdaError):
    """`doctor` found at least one failing check."""

    exit_code = 11
    kind = "doctor"


class OutboxError(SqlambdaError):
    """The outbox drain or its administration failed."""

    exit_code = 12
    kind = "outbox"


class DeployError(SqlambdaError):
    """Packaging or deploying a Lambda failed (no credentials, endpoint unreachable, API refusal)."""

    exit_code = 13
    kind = "deploy"
