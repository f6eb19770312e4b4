"""Importable helpers shared by the tests (fake GitHub server, temp repos, CLI runner)."""
