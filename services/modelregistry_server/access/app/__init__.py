"""Token use cases, the authenticator, and the ports they need."""
