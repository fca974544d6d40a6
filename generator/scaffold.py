"""``sqlambda modernize scaffold``: a Lambda folder and a replay test from a function's recorded calls.

Owns: writing ``<out>/<name>/`` with ``handler.py`` (a thin handler), ``<name>_core.py`` (the pure
core to fill in, with the original's source as a comment), ``recorded_calls.json`` (every distinct
recorded call: arguments, and the original's result or error, as raw JSON so numbers keep every
digit), ``test_replay.py`` (replays them against the core with the entry's comparison rules) and
``lambda.json``, from the templates in ``generator/scaffold_templates/`` (StrictUndefined). With
``calls_only`` only the recordings are refreshed, so the team's code is never overwritten.

Must not: touch a database (the target reads the samples) or AWS; overwrite an existing file
unless told to.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from sqlambda.errors import UsageError

_TEMPLATES = Path(__file__).parent / "scaffold_templates"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)


def recorded_calls(calls: list[tuple]) -> str:
    """``recorded_calls.json``: one entry per distinct argument set, in the order first seen."""
    seen: set[str] = set()
    parts = []
    for kind, args, result, error in calls:
        if args in seen:
            continue
        seen.add(args)
        parts.append('  {"id": %s, "args": %s, "result": %s, "error": %s}'
                     % (json.dumps(f"call-{len(parts) + 1}"), args, result or "null", error or "null"))
    return "[\n" + ",\n".join(parts) + "\n]\n"


def scaffold(samples: dict, out_dir: str | Path, *, calls_only: bool = False, force: bool = False) -> list[Path]:
    """Write the folder for ``samples`` (``Target.modernize().samples``); the files written."""
    name = samples["name"]
    folder = Path(out_dir) / name
    if not samples["calls"]:
        raise UsageError(f"no calls of {samples['function']} are recorded yet",
                         hint="let the function be called in stage record (or shadow) first")
    rules = samples["options"].get("compare") or {}
    keys = [k for k in json.loads(samples["calls"][0][1])]
    context = {"name": name, "function": samples["function"], "definition": samples["definition"],
               "keys": keys, "folder": str(folder),
               "rules": repr({"ignore_keys": list(rules.get("ignore_keys", [])), "tolerance": rules.get("tolerance", 0.0),
                              "unordered": bool(rules.get("unordered", False))})}
    files = {"recorded_calls.json": recorded_calls(samples["calls"])}
    if not calls_only:
        env = _env()
        files.update({
            "handler.py": env.get_template("handler.py.j2").render(**context),
            f"{name}_core.py": env.get_template("core.py.j2").render(**context),
            "test_replay.py": env.get_template("test_replay.py.j2").render(**context),
            "lambda.json": env.get_template("lambda.json.j2").render(**context),
        })
    existing = [f for f in files if (folder / f).exists() and f != "recorded_calls.json"]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exist in {folder}; nothing was written",
                         hint="--calls-only refreshes recorded_calls.json alone; --force overwrites everything")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in files.items():
        (folder / fname).write_text(text)
        written.append(folder / fname)
    return written
