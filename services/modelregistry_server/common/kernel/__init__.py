"""Pure rules both services share: error types, request ids, paging. Standard library only."""
