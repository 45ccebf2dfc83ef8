"""`python -m bondhu` runs the CLI."""

from bondhu.cli import main

main()
