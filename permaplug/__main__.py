"""``python -m permaplug`` runs the command line."""
from permaplug.cli import cli

if __name__ == "__main__":  # pragma: no cover
    cli()
