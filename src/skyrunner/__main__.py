"""``python -m skyrunner``: the same as the ``skyrunner`` command."""

from skyrunner.cli import main

main()
