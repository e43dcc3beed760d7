"""``python -m workers.cli``: the same as the ``codectl`` console script."""

from workers.cli.root import main

main()
