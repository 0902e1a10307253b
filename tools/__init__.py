"""Tooling of the repository (the book's rerun and check commands); not part of srlib."""
