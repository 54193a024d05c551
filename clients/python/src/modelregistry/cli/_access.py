"""``login``, ``logout``, ``whoami`` and ``token create|list|revoke``: who the CLI is.

The parser part (``add_access_commands``) is called by ``build_parser``; the commands run
with a ``Client`` like every other, except ``logout``, which only edits the credentials file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from modelregistry._credentials import credentials_path, forget_token, save_token
from modelregistry.access.v1 import access_token_pb2, role_binding_pb2
from modelregistry.cli import _format as fmt
from modelregistry.cli._parser import UsageError
from modelregistry.cli._values import parse_duration
from modelregistry.client import Client

AddCommand = Callable[..., argparse.ArgumentParser]


def add_access_commands(add: AddCommand, example: Callable[..., str]) -> None:
    """Declare the access commands with ``build_parser``'s ``add``."""
    login = add(
        "login",
        "check a token with the server and remember it for this server address",
        example(
            "modelregistry login --token-file .modelregistry/admin-token",
            'echo "$TOKEN" | modelregistry login --url registry.internal:50051',
        ),
        description=(
            "Check a token with the server and remember it for this server address in "
            "~/.config/modelregistry/credentials.json (mode 0600; $MODELREGISTRY_CONFIG_DIR "
            "moves it). The token comes from --token-file, else --token, else standard input."
        ),
    )
    login.add_argument("--token-file", type=Path, metavar="FILE", help="read the token here")
    add("logout", "forget the token remembered for this server address", example(
        "modelregistry logout"))  # fmt: skip
    add("whoami", "show the principal the server authenticates this CLI as", example(
        "modelregistry whoami"))  # fmt: skip
    token = add(
        "token",
        "create, list or revoke bearer tokens",
        example(
            "modelregistry token create ci-team-a --ttl 90d --description 'CI of team a'",
            "modelregistry token list",
            "modelregistry token revoke tokens/0f3a9c1d2b4e5f60",
        ),
    )
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = add("create", "create a token for PRINCIPAL (the secret is shown once)",
                 example("modelregistry token create alice --ttl 30d"), under=actions)  # fmt: skip
    create.add_argument("principal", metavar="PRINCIPAL")
    create.add_argument("--description", default="", help="what the token is for")
    create.add_argument(
        "--ttl", metavar="DURATION", help="valid for this long, e.g. 12h, 30d (default: forever)"
    )
    listing = add(
        "list",
        "list tokens, newest first (never their secrets)",
        example("modelregistry token list --principal alice --all"),
        under=actions,
    )
    listing.add_argument("--principal", default="", help="only tokens of this principal")
    listing.add_argument("--all", action="store_true", help="include revoked and expired tokens")
    revoke = add(
        "revoke",
        "revoke a token: calls made with it fail from now on",
        example("modelregistry token revoke tokens/0f3a9c1d2b4e5f60"),
        under=actions,
    )
    revoke.add_argument("name", metavar="TOKEN", help="tokens/<id> or the id")
    _add_binding_commands(add, example)


def _add_binding_commands(add: AddCommand, example: Callable[..., str]) -> None:
    access = add(
        "access",
        "grant, revoke or list roles (viewer, writer, maintainer, admin)",
        example(
            "modelregistry access grant alice writer 'team-a-*'",
            "modelregistry access grant group:ml-platform admin '*'",
            "modelregistry access list --subject alice",
            "modelregistry access revoke roleBindings/0f3a9c1d2b4e5f60",
        ),
        description=(
            "Grant, revoke or list role bindings. A binding gives a subject (a principal, or "
            "group:NAME) a role on a scope: one model (fraud), a name prefix (team-a-*) or "
            "everything (*). Roles nest: viewer (read, resolve, pull) < writer (push, labels) < "
            "maintainer (aliases, delete versions) < admin (delete models, GC, blobs, tokens, "
            "bindings)."
        ),
    )
    actions = access.add_subparsers(dest="access_command", metavar="ACTION", required=True)
    grant = add(
        "grant",
        "give SUBJECT ROLE on SCOPE",
        example("modelregistry access grant alice viewer fraud"),
        under=actions,
    )
    grant.add_argument("subject", metavar="SUBJECT", help="a principal, or group:NAME")
    grant.add_argument(
        "role",
        metavar="ROLE",
        choices=("viewer", "writer", "maintainer", "admin", "impersonator", "reporter"),
    )
    grant.add_argument("scope", metavar="SCOPE", help="a model, a prefix-*, or *")
    listing = add(
        "list", "list role bindings", example("modelregistry access list --subject alice"),
        under=actions,
    )  # fmt: skip
    listing.add_argument("--subject", default="", help="only the bindings of SUBJECT")
    revoke = add(
        "revoke",
        "remove a role binding",
        example("modelregistry access revoke roleBindings/0f3a9c1d2b4e5f60"),
        under=actions,
    )
    revoke.add_argument("name", metavar="BINDING", help="roleBindings/<id>, as list shows")


def _read_token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        return str(args.token_file.read_text()).strip()
    if getattr(args, "token", None):
        return str(args.token).strip()
    if sys.stdin.isatty():
        print("token: ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip()


def cmd_login(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Verify the token with ``WhoAmI`` first: a typo is caught now, not at the next call."""
    token = _read_token(args)
    with Client(client.target, token=token, timeout=args.timeout) as checking:
        me = checking.whoami()
    path = save_token(client.target, token)
    text = f"logged in to {client.target} as {_safe(me.principal)} (token saved in {path})"
    emit(out, args, {"principal": me.principal, "server": client.target, "saved": str(path)},
          text)  # fmt: skip
    return 0


def cmd_logout(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Forget the saved token; say so when there was none."""
    forgotten = forget_token(client.target)
    text = f"forgot the token for {client.target}" if forgotten else (
        f"no token was saved for {client.target} in {credentials_path()}")  # fmt: skip
    emit(out, args, {"server": client.target, "forgotten": forgotten}, text)
    return 0


def cmd_whoami(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """The principal, how it was authenticated and with which token."""
    me = client.whoami()
    how = me.token or me.authentication_method
    text = f"{_safe(me.principal)} ({_safe(how)})"
    if me.groups:
        text += f"\ngroups: {_safe(', '.join(me.groups))}"
    emit(out, args, {"principal": me.principal, "method": me.authentication_method,
                      "token": me.token, "groups": list(me.groups)}, text)  # fmt: skip
    return 0


def cmd_token(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``token create|list|revoke``."""
    action = args.token_command
    if action == "create":
        try:
            ttl = None if args.ttl is None else parse_duration(args.ttl)
        except ValueError as exc:
            raise UsageError(f"--ttl: {exc}") from None
        reply = client.create_token(args.principal, description=args.description, ttl=ttl)
        data = {**_token_dict(reply.access_token), "secret": reply.secret}
        emit(out, args, data, f"{_safe(reply.secret)}\n")
        if not args.json and not args.quiet:
            print(f"created {_safe(reply.access_token.name)} for {_safe(args.principal)}; the "
                  "secret above is shown only now", file=sys.stderr)  # fmt: skip
        return 0
    if action == "list":
        tokens = client.list_tokens(principal=args.principal, show_inactive=args.all)
        rows = [
            (t.name, t.principal, _time(t, "create_time"), _time(t, "expire_time") or "never",
             _time(t, "last_use_time") or "-", _state(t), t.description)
            for t in tokens
        ]  # fmt: skip
        header = ("TOKEN", "PRINCIPAL", "CREATED", "EXPIRES", "LAST USED", "STATE", "DESCRIPTION")
        emit(out, args, [_token_dict(t) for t in tokens], fmt.table(header, rows))
        return 0
    revoked = client.revoke_token(args.name)
    text = f"revoked {_safe(revoked.name)} ({_safe(revoked.principal)})"
    emit(out, args, _token_dict(revoked), text)
    return 0


def _safe(text: str) -> str:
    """A value from the server, escaped for the terminal (a line break too)."""
    return fmt.printable(text)


def _state(token: access_token_pb2.AccessToken) -> str:
    if token.HasField("revoke_time"):
        return "revoked"
    expired = token.HasField("expire_time") and token.expire_time.ToDatetime(UTC) <= datetime.now(
        UTC
    )
    return "expired" if expired else "active"


def _time(token: access_token_pb2.AccessToken, field: str) -> str:
    has = token.HasField(field)  # type: ignore[arg-type]
    return fmt.local_time(getattr(token, field)) if has else ""


def _token_dict(token: access_token_pb2.AccessToken) -> dict[str, Any]:
    def stamp(field: str) -> str | None:
        has = token.HasField(field)  # type: ignore[arg-type]
        return getattr(token, field).ToJsonString() if has else None

    return {
        "name": token.name,
        "principal": token.principal,
        "description": token.description,
        "created_by": token.created_by,
        "create_time": stamp("create_time"),
        "expire_time": stamp("expire_time"),
        "last_use_time": stamp("last_use_time"),
        "revoke_time": stamp("revoke_time"),
    }


def emit(out: TextIO, args: argparse.Namespace, as_json: Any, as_text: str) -> None:
    """JSON, or the human text; server values in it were escaped with ``fmt.printable``."""
    if args.json:
        out.write(fmt.json_text(as_json) + "\n")
    elif as_text:
        out.write(fmt.printable(as_text.rstrip("\n"), keep="\n") + "\n")


def cmd_access(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``access grant|revoke|list``."""
    action = args.access_command
    if action == "grant":
        binding = client.grant(args.subject, args.role, args.scope)
        text = _safe(f"{binding.name}: {binding.subject} is {binding.role} on {binding.scope}")
        emit(out, args, _binding_dict(binding), text)
        return 0
    if action == "list":
        bindings = client.list_bindings(args.subject)
        rows = [(b.name, b.subject, b.role, b.scope, b.created_by) for b in bindings]
        header = ("BINDING", "SUBJECT", "ROLE", "SCOPE", "GRANTED BY")
        emit(out, args, [_binding_dict(b) for b in bindings], fmt.table(header, rows))
        return 0
    removed = client.revoke_binding(args.name)
    text = _safe(f"revoked {removed.name}: {removed.subject} was {removed.role} on {removed.scope}")
    emit(out, args, _binding_dict(removed), text)
    return 0


def _binding_dict(binding: role_binding_pb2.RoleBinding) -> dict[str, Any]:
    return {
        "name": binding.name,
        "subject": binding.subject,
        "role": binding.role,
        "scope": binding.scope,
        "created_by": binding.created_by,
        "create_time": binding.create_time.ToJsonString(),
    }


ACCESS_COMMANDS = {
    "access": cmd_access,
    "login": cmd_login,
    "logout": cmd_logout,
    "whoami": cmd_whoami,
    "token": cmd_token,
}
