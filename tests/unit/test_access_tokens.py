"""Tokens and the authenticator on an in-memory store: formats, hashing, expiry, revocation."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from modelregistry_server.access.app.tokens import CACHE_TTL, Authenticator, TokenService
from modelregistry_server.access.domain.token import TokenRecord, secret_sha256, token_id_of
from modelregistry_server.common.kernel.errors import InvalidArgument, NotFound, Unauthenticated
from modelregistry_server.common.kernel.identity import Principal
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Cursor, Paginator, split_page

pytestmark = pytest.mark.timeout(10)
ADMIN = Principal("admin", "token")


class InMemoryTokenStore:
    def __init__(self) -> None:
        self.rows: dict[str, TokenRecord] = {}
        self.gets = 0
        self.uses: list[tuple[str, datetime]] = []

    async def insert(self, record: TokenRecord) -> bool:
        if record.token_id in self.rows:
            return False
        self.rows[record.token_id] = record
        return True

    async def get(self, token_id: str) -> TokenRecord | None:
        self.gets += 1
        return self.rows.get(token_id)

    async def list(
        self, principal: str | None, active_at: datetime | None, after: Cursor | None, limit: int
    ) -> tuple[list[TokenRecord], Cursor | None]:
        rows = sorted(self.rows.values(), key=lambda t: (t.create_time, t.token_id), reverse=True)
        rows = [t for t in rows if principal in (None, t.principal)]
        rows = [t for t in rows if active_at is None or t.active(active_at)]
        if after is not None:
            rows = [t for t in rows if [t.create_time.isoformat(), t.token_id] < after]
        return split_page(
            rows[: limit + 1], limit, lambda t: [t.create_time.isoformat(), t.token_id]
        )

    async def revoke(self, token_id: str, when: datetime, actor: str) -> TokenRecord | None:
        record = self.rows.get(token_id)
        if record is None:
            return None
        if record.revoke_time is None:
            record = self.rows[token_id] = replace(record, revoke_time=when)
        return record

    async def record_use(self, token_id: str, when: datetime) -> None:
        self.uses.append((token_id, when))


class World:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)
        self.store = InMemoryTokenStore()
        self.auth = Authenticator(self.store, clock=lambda: self.now)
        paginator = Paginator(PageTokenCodec(b"k" * 32))
        self.tokens = TokenService(self.store, self.auth, paginator, clock=lambda: self.now)


@pytest.fixture
def world() -> World:
    return World()


async def test_a_created_token_authenticates_as_its_principal(world: World) -> None:
    record, secret = await world.tokens.create("alice", "laptop", None, ADMIN)
    principal = await world.auth.authenticate(f"Bearer {secret}")
    assert principal == Principal("alice", "token", record.name)
    assert record.created_by == "admin"
    assert token_id_of(secret) == record.token_id


async def test_only_the_hash_of_the_secret_is_stored(world: World) -> None:
    record, secret = await world.tokens.create("alice", "", None, ADMIN)
    stored = world.store.rows[record.token_id]
    assert stored.secret_sha256 == secret_sha256(secret)
    assert secret not in repr(stored)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "TOKEN_MISSING"),
        ("", "TOKEN_MISSING"),
        ("Basic dXNlcjpwYXNz", "TOKEN_INVALID"),
        ("Bearer ", "TOKEN_INVALID"),
        ("Bearer not-a-token", "TOKEN_INVALID"),
        ("Bearer mr1_0123456789abcdef_" + "A" * 43, "TOKEN_INVALID"),
    ],
)
async def test_bad_credentials_are_unauthenticated(
    world: World, header: str | None, reason: str
) -> None:
    with pytest.raises(Unauthenticated) as info:
        await world.auth.authenticate(header)
    assert info.value.reason == reason
    assert "modelregistry login" in info.value.message


async def test_a_wrong_secret_for_a_real_id_says_no_more_than_an_unknown_one(world: World) -> None:
    record, secret = await world.tokens.create("alice", "", None, ADMIN)
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(Unauthenticated) as wrong_info:
        await world.auth.authenticate(f"Bearer {wrong}")
    with pytest.raises(Unauthenticated) as unknown_info:
        await world.auth.authenticate("Bearer mr1_0123456789abcdef_" + "A" * 43)
    assert (wrong_info.value.reason, wrong_info.value.message) == (
        unknown_info.value.reason,
        unknown_info.value.message,
    )
    assert record.token_id not in wrong_info.value.message


async def test_an_expired_token_is_refused(world: World) -> None:
    _, secret = await world.tokens.create("ci", "", timedelta(hours=1), ADMIN)
    await world.auth.authenticate(f"Bearer {secret}")
    world.now += timedelta(hours=1)
    with pytest.raises(Unauthenticated) as info:
        await world.auth.authenticate(f"Bearer {secret}")
    assert info.value.reason == "TOKEN_EXPIRED"


async def test_a_revocation_here_takes_effect_at_once(world: World) -> None:
    record, secret = await world.tokens.create("leaver", "", None, ADMIN)
    await world.auth.authenticate(f"Bearer {secret}")  # now cached
    revoked = await world.tokens.revoke(record.name, ADMIN)
    assert revoked.revoke_time == world.now
    with pytest.raises(Unauthenticated) as info:
        await world.auth.authenticate(f"Bearer {secret}")
    assert info.value.reason == "TOKEN_REVOKED"
    again = await world.tokens.revoke(record.name, ADMIN)
    assert again.revoke_time == revoked.revoke_time


async def test_a_revocation_elsewhere_takes_effect_within_the_cache_ttl(world: World) -> None:
    record, secret = await world.tokens.create("leaver", "", None, ADMIN)
    await world.auth.authenticate(f"Bearer {secret}")
    await world.store.revoke(record.token_id, world.now, "admin")  # another replica did it
    await world.auth.authenticate(f"Bearer {secret}")  # still cached
    world.now += CACHE_TTL
    with pytest.raises(Unauthenticated):
        await world.auth.authenticate(f"Bearer {secret}")


async def test_repeated_calls_read_the_store_once_per_cache_ttl(world: World) -> None:
    _, secret = await world.tokens.create("svc", "", None, ADMIN)
    for _ in range(50):
        await world.auth.authenticate(f"Bearer {secret}")
    assert world.store.gets == 1


async def test_use_is_recorded_at_most_once_a_minute(world: World) -> None:
    record, secret = await world.tokens.create("svc", "", None, ADMIN)
    for _ in range(3):
        await world.auth.authenticate(f"Bearer {secret}")
        world.now += timedelta(seconds=20)
    world.now += timedelta(seconds=1)
    await world.auth.authenticate(f"Bearer {secret}")
    for _ in range(3):  # let the background writes run
        await asyncio.sleep(0)
    assert [token_id for token_id, _ in world.store.uses] == [record.token_id] * 2


async def test_the_internal_secret_is_the_internal_principal(world: World) -> None:
    principal = await world.auth.authenticate(f"Bearer {world.auth.internal_secret}")
    assert principal.method == "internal"
    assert Authenticator(world.store).internal_secret != world.auth.internal_secret


@pytest.mark.parametrize(
    ("principal", "description", "ttl", "field"),
    [
        ("has space", "", None, "principal"),
        ("", "", None, "principal"),
        ("a" * 129, "", None, "principal"),
        ("ok", "x" * 257, None, "description"),
        ("ok", "", timedelta(seconds=59), "ttl"),
        # A valid Duration of 4,000 years: past the calendar, refused rather than an overflow.
        ("ok", "", timedelta(seconds=137438953472), "ttl"),
    ],
)
async def test_create_checks_its_fields(
    world: World, principal: str, description: str, ttl: timedelta | None, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        await world.tokens.create(principal, description, ttl, ADMIN)
    assert info.value.field == field
    assert world.store.rows == {}


async def test_revoking_an_unknown_or_malformed_name(world: World) -> None:
    with pytest.raises(NotFound) as info:
        await world.tokens.revoke("tokens/0123456789abcdef", ADMIN)
    assert info.value.reason == "ACCESS_TOKEN_NOT_FOUND"
    with pytest.raises(InvalidArgument):
        await world.tokens.revoke("tokens/../../etc", ADMIN)


async def test_list_pages_newest_first_and_hides_inactive_unless_asked(world: World) -> None:
    made = []
    for n in range(5):
        record, _ = await world.tokens.create(f"p{n}", "", None, ADMIN)
        made.append(record.name)
        world.now += timedelta(seconds=1)
    await world.tokens.revoke(made[0], ADMIN)
    seen, token = [], ""
    while True:
        page = await world.tokens.list(2, token, "", False)
        seen += [t.name for t in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(made[1:]))
    everything = await world.tokens.list(10, "", "", True)
    assert [t.name for t in everything.items] == list(reversed(made))


async def test_adopting_the_bootstrap_secret_is_idempotent_and_refuses_a_clash(
    world: World,
) -> None:
    secret = "mr1_0123456789abcdef_" + "B" * 43
    first = await world.tokens.adopt(secret, "admin", "bootstrap")
    again = await world.tokens.adopt(secret, "admin", "bootstrap")
    assert first == again
    assert (await world.auth.authenticate(f"Bearer {secret}")).name == "admin"
    with pytest.raises(ValueError, match="another secret"):
        await world.tokens.adopt("mr1_0123456789abcdef_" + "C" * 43, "admin", "bootstrap")
    with pytest.raises(ValueError, match="not a token secret"):
        await world.tokens.adopt("hunter2", "admin", "bootstrap")
