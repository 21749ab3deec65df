"""Iterative-SPO training of VLMs on pair datasets: not built yet (the README lists what exists)."""
