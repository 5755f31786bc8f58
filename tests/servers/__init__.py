"""Real services started for tests (moto for S3), so suites exercise the same HTTP path as production."""
