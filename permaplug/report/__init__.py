"""The self-contained HTML report of one or more run folders."""
