"""gRPC servicer of the artifact service: translation only."""
