"""`python -m offlinepack` is the CLI (bootstrap.py hands over to it this way)."""

from offlinepack.cli.app import main

if __name__ == "__main__":
    main()
