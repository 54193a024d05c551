"""The HTTP face of the registry: JSON API transcoded from the protos, file URLs, and the UI.

It runs in the server process on its own port (``--http-listen``). JSON calls and pages reach
the services through this process's own gRPC server (``gateway.py``), so they go through the
same identity, permission and audit code as any gRPC call; file bytes stream straight from the
blob store.
"""
