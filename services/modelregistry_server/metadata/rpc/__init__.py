"""gRPC servicer of the metadata service: translation only."""
