"""Blob records put to work: verifying objects against them, and finding what uploads left behind."""
