"""The README's background recipe for the local stack, run as written.

The block is read from README.md ("From a script, in the background"), run by bash with a private
pid-file location, and must leave no stack behind. Its ``aws`` line is run by the AWS CLI when one
is installed (v1 without ``--cli-binary-format``, as the README says), else by the same call
through boto3. Before the fix the recipe was a ``coproc`` whose ``kill`` hit the wrapping subshell
and left the server running.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import README, readme_bash_block

pytestmark = pytest.mark.local_stack


BOTO3_INVOKE = (f"{sys.executable} -c \"import boto3,sys; r=boto3.client('lambda').invoke(FunctionName='echo', "
                "Payload=b'{\\\"a\\\":1}'); sys.stdout.write(r['Payload'].read().decode())\"")


def recipe() -> str:
    return readme_bash_block('From a script, in the background')


def _aws_line(script: str) -> str:
    aws = shutil.which("aws")
    line = next(ln for ln in script.splitlines() if ln.startswith("aws lambda invoke"))
    if aws is None:
        return script.replace(line, BOTO3_INVOKE)
    version = subprocess.run([aws, "--version"], capture_output=True, text=True).stdout + \
        subprocess.run([aws, "--version"], capture_output=True, text=True).stderr
    if version.startswith("aws-cli/1."):
        return script.replace(line, line.replace(" --cli-binary-format raw-in-base64-out", ""))
    return script


def _stacks_with(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes() and \
                        b"sqlambda.local" in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def test_the_background_recipe_runs_and_stops_everything(tmp_path):
    script = _aws_line(recipe())
    assert "sqlambda local start --detach" in script and "sqlambda local stop" in script
    bindir = os.path.dirname(sys.executable)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "PATH": bindir + os.pathsep + os.environ["PATH"], "XDG_RUNTIME_DIR": str(tmp_path),
           "SQLAMBDA_RECIPE_TEST": str(tmp_path)}
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env,
                         timeout=180, cwd=README.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r'"Status":\s*"OK"', res.stdout), res.stdout
    assert "running: http://127.0.0.1:" in res.stdout and "stopped the local stack" in res.stdout
    deadline = time.monotonic() + 10
    while _stacks_with(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _stacks_with(str(tmp_path)) == []
    assert not (tmp_path / "sqlambda-local.pid").exists()
