"""Real artefacts for tests: tiny wheels and sdists, and a PEP 503 index on 127.0.0.1."""
