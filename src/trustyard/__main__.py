"""Allow ``python -m trustyard`` as an alias of the ``trustyard`` command."""

from trustyard.cli import main

main()
