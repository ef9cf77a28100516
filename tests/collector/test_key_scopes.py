"""Key scopes: public keys cannot forge purchases or revenue, and a verifying key cannot claim anyone's journey."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reise

from collector.errors import ConfigError
from collector.ingest.scopes import ALL_SCOPES, PUBLIC_SCOPES, KeyScope, parse_key_scopes, user_hash
from collector.settings import Settings
from tests.channels.conftest import get_raw
from tests.helpers import ROOT, Collector

SECRET = "verify-secret-0123456789"
KEYS = ("test=wk_test,site=pk_site@web+email,verified=pk_verified@web+email,shopweb=pk_shopweb@web,"
        "narrow=wk_narrow,till=wk_till@pos")


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector with a verifying public key, a public key allowed purchases and a narrowed secret key."""
    with Collector(data_dir=tmp_path_factory.mktemp("scopes") / "data", extra_env={
            "REISE_WRITE_KEYS": KEYS, "REISE_VERIFY_SECRETS": f"verified={SECRET}",
            "REISE_KEY_SCOPES": "shopweb=all, narrow=awareness+consideration"}) as instance:
        yield instance


def send(collector: Collector, key: str, *events: dict[str, Any]) -> dict[str, Any]:
    """POST a batch (each event on the web channel) and return the answer."""
    reply = collector.post("/v1/batch", {"batch": [{"channel": "web", **e} for e in events]}, key=key)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def reasons(body: dict[str, Any]) -> list[str]:
    """The fields the rejections name, in order."""
    return [r["reason"].split(":")[0] for r in body["rejected"]]


def test_a_public_key_cannot_send_purchases_or_revenue(scoped: Collector) -> None:
    user = f"forged-{uuid.uuid4().hex[:8]}"
    body = send(scoped, "pk_site",
                {"type": "track", "userId": user, "event": "Anything", "stage": "purchase", "revenue": 1e9},
                {"type": "track", "userId": user, "event": "Order Completed"},  # purchase by rule
                {"type": "track", "userId": user, "event": "Product Viewed", "properties": {"revenue": 5}},
                {"type": "track", "userId": user, "event": "Order Refunded", "properties": {"revenue": 5}},
                {"type": "page", "userId": user, "name": "Home"})
    assert body["accepted"] == 1 and reasons(body) == ["stage", "stage", "revenue", "revenue"], body
    assert "purchases come from the server SDK or the tills" in body["rejected"][0]["reason"]
    scoped.wait_settled()
    journey = scoped.query("SELECT purchases, revenue FROM customer_journey_of(id = {u:String})", {"u": user})
    assert journey == [{"purchases": 0, "revenue": 0}]
    kept = scoped.scalar("SELECT count() FROM dead_letters WHERE customer_id = {u:String}", {"u": user})
    assert kept == 4
    # the pixel too
    assert get_raw(f"{scoped.url}/p.gif?writeKey=pk_site&channel=email&event=x&stage=purchase&uid={user}"
                   f"&mid={user}-px").status == 200
    assert scoped.wait_for("SELECT count() FROM dead_letters WHERE customer_id = {u:String}", 5, {"u": user}) == 5


def test_scopes_widen_a_public_key_and_narrow_a_secret_one(scoped: Collector) -> None:
    user = f"scoped-{uuid.uuid4().hex[:8]}"
    purchase = {"type": "track", "userId": user, "event": "Order Completed", "channel": "web",
                "properties": {"order_id": f"{user}-o1", "revenue": 20, "currency": "EUR"}}
    assert send(scoped, "pk_shopweb", purchase)["accepted"] == 1
    narrow = send(scoped, "wk_narrow", {**purchase, "properties": {"order_id": f"{user}-o2"}},
                  {"type": "track", "userId": user, "event": "Product Viewed", "revenue": 3},
                  {"type": "track", "userId": user, "event": "Product Viewed"},
                  {"type": "track", "userId": user, "event": "Review Written", "stage": "advocacy"})
    assert narrow["accepted"] == 1 and reasons(narrow) == ["stage", "revenue", "stage"], narrow
    assert send(scoped, "wk_test", {**purchase, "properties": {"order_id": f"{user}-o3", "revenue": 1}})[
        "accepted"] == 1  # a secret key keeps every stage and revenue


def test_a_verifying_key_needs_the_user_hash(scoped: Collector) -> None:
    user, anon = f"cust-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    good = reise.user_hash(SECRET, user)
    body = send(scoped, "pk_verified",
                {"type": "identify", "userId": user, "anonymousId": anon, "messageId": f"{user}-1"},
                {"type": "identify", "userId": user, "anonymousId": anon, "userHash": user_hash("wrong" * 4, user)},
                {"type": "track", "userId": user, "event": "Product Viewed", "userHash": good[:-1]},
                {"type": "identify", "userId": user, "anonymousId": anon, "userHash": good.upper(),
                 "messageId": f"{user}-ok"},
                {"type": "track", "userId": user, "event": "Product Viewed", "context": {"userHash": good}},
                {"type": "page", "anonymousId": anon, "name": "Home"})
    assert body["accepted"] == 3 and reasons(body) == ["userHash"] * 3, body
    assert "HMAC-SHA256(secret, userId)" in body["rejected"][0]["reason"]
    assert body["rejected"][1]["reason"] == "userHash: does not match the userId"
    scoped.wait_settled()
    ids = scoped.scalar("SELECT ids FROM customer_journey_of(id = {u:String})", {"u": user})
    assert sorted(ids) == sorted([user, anon])


def test_a_verifying_key_cannot_take_over_a_customer(scoped: Collector) -> None:
    victim, attacker = f"victim-{uuid.uuid4().hex[:8]}", f"attacker-{uuid.uuid4().hex[:8]}"
    victim_anon = str(uuid.uuid4())
    assert send(scoped, "wk_test", {"type": "identify", "userId": victim, "anonymousId": victim_anon},
                {"type": "track", "userId": victim, "event": "Order Completed",
                 "properties": {"order_id": f"{victim}-o", "revenue": 50}})["accepted"] == 2
    attack = user_hash(SECRET, attacker)  # the attacker's own, valid hash (from being signed in as themselves)
    body = send(scoped, "pk_verified",
                # identify someone else: no hash for that id
                {"type": "identify", "userId": victim, "anonymousId": str(uuid.uuid4()), "userHash": attack},
                # alias the victim's customer id into the attacker
                {"type": "alias", "previousId": victim, "userId": attacker, "userHash": attack},
                # the victim's customer id posing as the attacker's anonymous id
                {"type": "identify", "anonymousId": victim, "userId": attacker, "userHash": attack},
                # contacts forged into the victim's journey under their customer id
                {"type": "track", "anonymousId": victim, "event": "Product Viewed"},
                # a plain alias from a fresh browser id is fine
                {"type": "alias", "previousId": str(uuid.uuid4()), "userId": attacker, "userHash": attack})
    assert body["accepted"] == 1 and reasons(body) == ["userHash", "previousId", "anonymousId", "anonymousId"], body
    scoped.wait_settled()
    journey = scoped.query("SELECT ids, contacts, revenue FROM customer_journey_of(id = {u:String})", {"u": victim})
    assert sorted(journey[0]["ids"]) == sorted([victim, victim_anon]) and journey[0]["contacts"] == 1
    assert float(journey[0]["revenue"]) == 50


def test_a_verifying_pixel_takes_the_user_hash(scoped: Collector) -> None:
    user = f"px-{uuid.uuid4().hex[:8]}"
    url = reise.links.pixel_url(scoped.url, "pk_verified", user_id=user, user_hash=reise.user_hash(SECRET, user),
                                campaign="spring")
    assert get_raw(url).status == 200
    assert get_raw(f"{scoped.url}/p.gif?writeKey=pk_verified&channel=email&uid={user}&mid={user}-nohash").status == 200
    assert scoped.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user}) == 1
    assert scoped.wait_for("SELECT count() FROM dead_letters WHERE customer_id = {u:String}", 1, {"u": user}) == 1
    assert scoped.scalar("SELECT properties FROM touchpoints WHERE customer_id = {u:String}", {"u": user}) == {}


def test_reise_user_hash_matches_the_sdk(scoped: Collector, tmp_path: Path) -> None:
    def cli(*args: str, secrets: str) -> subprocess.CompletedProcess[str]:
        env = {**scoped.env(), "REISE_VERIFY_SECRETS": secrets}
        return subprocess.run([sys.executable, "-m", "collector", "user-hash", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    one = cli("cust-42", secrets=f"verified={SECRET}")
    assert one.returncode == 0 and one.stdout.strip() == reise.user_hash(SECRET, "cust-42") == user_hash(SECRET,
                                                                                                          "cust-42")
    several = f"verified={SECRET},site=another-secret-0123456"
    assert cli("cust-42", secrets=several).returncode == 2
    chosen = cli("cust-42", "--source", "site", secrets=several)
    assert chosen.stdout.strip() == reise.user_hash("another-secret-0123456", "cust-42")


def test_scope_settings() -> None:
    assert parse_key_scopes("a=all, b=stages, c=awareness+revenue, d=none") == {
        "a": ALL_SCOPES, "b": KeyScope(ALL_SCOPES.stages, False), "c": KeyScope(frozenset({"awareness"}), True),
        "d": KeyScope(frozenset(), False)}
    assert PUBLIC_SCOPES.describe() == "awareness+consideration+retention+advocacy"
    for bad in ("a=buy", "a=", "a=all,a=none"):
        with pytest.raises(ConfigError, match="REISE_KEY_SCOPES"):
            parse_key_scopes(bad)
    env = {"REISE_DSN": "chdb:///tmp/reise-scopes", "REISE_WRITE_KEYS": "shop=wk_1,site=pk_2@web"}
    settings = Settings.from_env(env)
    assert settings.scope_of(settings.write_keys["pk_2"]) == PUBLIC_SCOPES
    assert settings.scope_of(settings.write_keys["wk_1"]) == ALL_SCOPES
    for var, value in (("REISE_VERIFY_SECRETS", "elsewhere=0123456789abcdef"), ("REISE_KEY_SCOPES", "elsewhere=all"),
                       ("REISE_VERIFY_SECRETS", "site=short")):
        with pytest.raises(ConfigError, match=var):
            Settings.from_env({**env, var: value})
