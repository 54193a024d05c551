"""Adapters that implement the artifact ports."""
