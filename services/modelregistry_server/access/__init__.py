"""AccessService: who is calling. Bearer tokens (created, listed, revoked; stored as hashes)
and the authentication every service of the registry runs on every call.

``domain/token.py`` holds the token format and rules; ``app/tokens.py`` the use cases and the
``Authenticator`` the rpc edge calls; ``adapters/postgres/`` the ``access`` schema.
"""
