"""`python -m cli`: the `emissions` command without installing its script."""

from cli.main import main

main()
