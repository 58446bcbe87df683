"""``python -m permaplug`` runs the command line."""
from permaplug.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
