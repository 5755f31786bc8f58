"""One storage contract, run against every backend."""
