"""`python -m roz.cli ...` runs the `roz` command."""

from roz.cli import main

main()
