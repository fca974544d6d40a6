"""``python -m sqlambda.local [--host H] [--port P] [--state-dir D] [--allow-remote] [--json] [--localstack]``: the
stack without the CLI's imports. Errors print as ``error:``/``hint:`` lines with their exit code."""

import argparse
import sys

from sqlambda.errors import SqlambdaError
from sqlambda.local import require_extra

p = argparse.ArgumentParser(prog="python -m sqlambda.local")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=None)
p.add_argument("--localstack", action="store_true")
p.add_argument("--state-dir", default=None)
p.add_argument("--allow-remote", action="store_true")
p.add_argument("--json", action="store_true")
a = p.parse_args()
try:
    require_extra()
    from sqlambda.local.server import serve

    serve(a.host, a.port, a.state_dir, allow_remote=a.allow_remote, as_json=a.json, localstack=a.localstack)
except SqlambdaError as exc:
    print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr, flush=True)
    sys.exit(exc.exit_code)
