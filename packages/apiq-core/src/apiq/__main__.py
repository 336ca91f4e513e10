"""`python -m apiq` runs the `apiq` command."""

from apiq.cli import main

main()
