"""Token format and rules (standard library only)."""
