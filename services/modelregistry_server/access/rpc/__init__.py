"""gRPC servicer of the AccessService: translation only."""
