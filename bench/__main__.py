"""`python -m slrbench` = the `slrbench` command."""

from slrbench.cli import main

main()
