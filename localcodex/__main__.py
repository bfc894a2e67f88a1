"""`python -m localcodex` runs the CLI."""

from localcodex.cli import main

if __name__ == "__main__":
    main()
