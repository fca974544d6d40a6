"""Helpers of the example Lambdas' tests: their folders on sys.path, and ``load_handler``.

Each Lambda folder is zipped on its own, so its modules import each other by plain name
(``from metrics_core import ...``); the core modules have distinct names, so all three folders can
share one test interpreter. ``handler.py`` exists in every folder and is loaded under a unique
name by ``load_handler``. (A module of its own, not conftest, so ``import`` finds this one and not
another directory's conftest.)
"""

import importlib.util
import sys

from sqlambda.resources import folder

LAMBDAS = folder("lambdas")
NAMES = ("cloudwatch_metrics", "firehose_to_redshift", "kinesis_reader")
for _name in NAMES:
    if str(LAMBDAS / _name) not in sys.path:
        sys.path.insert(0, str(LAMBDAS / _name))


def load_handler(name: str):
    """The ``handler`` module of one Lambda folder, imported under the name ``<folder>_handler``."""
    spec = importlib.util.spec_from_file_location(f"{name}_handler", LAMBDAS / name / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
