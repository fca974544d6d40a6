"""``python -m sqlambda.cli``: the same as the ``sqlambda`` console script."""

from sqlambda.cli import main

main()
