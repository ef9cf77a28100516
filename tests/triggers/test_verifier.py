"""The README's receiver-side verifier: it accepts what Reise signs and detects every kind of bad signature."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from collector.triggers.signing import sign
from tests.helpers import ROOT

SECRET = "whsec_verifier_0123456789"


def _verifier() -> Callable[..., bool]:
    """The README's example, as it stands there."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- verify-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert code, "the README's verifier example is missing"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # our own documentation
    verify = namespace["verify_reise_signature"]
    assert callable(verify)
    return verify


def test_the_readme_verifier_accepts_a_good_signature_and_detects_bad_ones() -> None:
    """Good passes; a changed body, a wrong secret, an altered digest, an old or future stamp, junk: rejected."""
    verify = _verifier()
    body = b'{"trigger":"welcome","idempotency_key":"k"}'
    good = sign(SECRET, body)
    assert verify(SECRET, good, body)
    assert not verify(SECRET, good, body.replace(b"welcome", b"welcomf"))
    assert not verify("another-secret-0123456789", good, body)
    assert not verify(SECRET, good[:-1] + ("0" if good[-1] != "0" else "1"), body)
    assert not verify(SECRET, sign(SECRET, body, int(time.time()) - 301), body)
    assert not verify(SECRET, sign(SECRET, body, int(time.time()) + 301), body)
    assert verify(SECRET, sign(SECRET, body, int(time.time()) - 200), body)
    stamp = good.split(",")[0]
    assert not verify(SECRET, stamp, body)  # no v1
    for junk in ("", "t=x,v1=00", "nonsense", "v1=abc"):
        assert not verify(SECRET, junk, body)
