"""gRPC plumbing both servicers share: the one error-to-status mapping, handler decorators."""
