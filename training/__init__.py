"""Iterative-SPO training of VLMs on pair datasets (issue 6)."""
