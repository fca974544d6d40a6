"""``python -m sqlambda.local [--host H] [--port P] [--state-dir D]``: the stack without the CLI's imports."""

import argparse

from sqlambda.local.server import serve

p = argparse.ArgumentParser(prog="python -m sqlambda.local")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--state-dir", default=None)
a = p.parse_args()
serve(a.host, a.port, a.state_dir)
