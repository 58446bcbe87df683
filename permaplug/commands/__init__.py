"""One module per CLI command; :mod:`permaplug.cli` assembles them."""
