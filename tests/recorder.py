"""A recording Lambda for the trigger and outbox tests: each batch it receives becomes one JSON file.

Deployed with ``deploy_source``. Files land in ``$RECORD_DIR`` (one per invocation, written then
renamed, so a reader never sees half a file). While the file ``$FAIL_FLAG`` exists the handler
records nothing and raises: a Lambda function error (Unhandled) the tests switch on and off.
"""

from __future__ import annotations

import glob
import json
import os
import time

SOURCE = '''
import json, os, uuid

def handler(event, context):
    if os.path.exists(os.environ.get("FAIL_FLAG", "/nonexistent")):
        raise RuntimeError("asked to fail")
    path = os.path.join(os.environ["RECORD_DIR"], uuid.uuid4().hex + ".json")
    with open(path + ".tmp", "w") as fh:
        fh.write(json.dumps(event))
    os.rename(path + ".tmp", path)
    return {"received": len(event.get("records", []))}
'''


class Recorder:
    """The deployed function's name, its record folder and its failure switch."""

    def __init__(self, name: str, folder: str) -> None:
        self.name = name
        self.folder = folder
        self.flag = os.path.join(folder, "FAIL")

    def env(self) -> dict:
        return {"RECORD_DIR": self.folder, "FAIL_FLAG": self.flag}

    def fail(self, on: bool) -> None:
        if on:
            open(self.flag, "w").close()
        elif os.path.exists(self.flag):
            os.remove(self.flag)

    def clear(self) -> None:
        self.fail(False)
        for path in glob.glob(os.path.join(self.folder, "*.json")):
            os.remove(path)

    def batches(self, trigger: str | None = None) -> list[dict]:
        out = []
        for path in sorted(glob.glob(os.path.join(self.folder, "*.json"))):
            with open(path) as fh:
                doc = json.load(fh)
            if trigger is None or doc.get("trigger") == trigger:
                out.append(doc)
        return out

    def records(self, trigger: str | None = None) -> list[dict]:
        return [r for b in self.batches(trigger) for r in b["records"]]

    def wait_records(self, trigger: str, count: int, timeout: float = 60) -> list[dict]:
        """Records of ``trigger`` once at least ``count`` arrived (async calls land a bit later)."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records(trigger)
            if len(recs) >= count or time.monotonic() > deadline:
                return recs
            time.sleep(0.1)
