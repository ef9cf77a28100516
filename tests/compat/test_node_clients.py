"""@segment/analytics-node and @rudderstack/rudder-sdk-node against the collector, when npm is there.

The packages are installed with npm into a cache directory beside the system's temporary files (reused between
runs); the test is skipped, saying why, when node or npm is missing or the install fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.compat.conftest import rows
from tests.helpers import Collector

PACKAGES = ("@segment/analytics-node@3", "@rudderstack/rudder-sdk-node@3")
CACHE = Path(tempfile.gettempdir()) / "reise-test-npm"
PAGE_URL = "https://shop.example/spring?utm_source=nl&utm_medium=email&utm_campaign=spring"

SCRIPT = r"""
const [, , library, url, writeKey, user, count, pad] = process.argv;
const props = (n) => ({ n, channel: 'pos', pad: 'p'.repeat(Number(pad)) });
async function main() {
  if (library === 'segment') {
    const { Analytics } = require('@segment/analytics-node');
    const client = new Analytics({ writeKey, host: url, flushAt: 200, flushInterval: 100, maxRetries: 1 });
    client.on('error', (err) => { console.error('error', err && err.code, err && err.reason); process.exitCode = 3; });
    client.page({ userId: user, name: 'Spring', properties: { url: process.env.PAGE_URL } });
    for (let n = 0; n < Number(count); n++) client.track({ userId: user, event: 'Node Track', properties: props(n) });
    await client.closeAndFlush({ timeout: 20000 });
  } else {
    const Analytics = require('@rudderstack/rudder-sdk-node');
    const client = new Analytics(writeKey, { dataPlaneUrl: url, flushAt: 200, flushInterval: 100, maxRetries: 1,
      errorHandler: (err) => { console.error('error', err && err.message); process.exitCode = 3; } });
    client.page({ userId: user, name: 'Spring', properties: { url: process.env.PAGE_URL } });
    for (let n = 0; n < Number(count); n++) client.track({ userId: user, event: 'Node Track', properties: props(n) });
    await client.flush();
  }
}
main().catch((err) => { console.error('thrown', err && err.message); process.exit(4); });
"""


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """The installed Node clients (skips when node or npm is missing, or the install fails)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (Debian: apt-get install nodejs npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    if not all((CACHE / "node_modules" / name.rsplit("@", 1)[0]).is_dir() for name in PACKAGES):
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), *PACKAGES],
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.skip(f"npm install failed: {done.stderr[-500:]}")
    (CACHE / "send.js").write_text(SCRIPT)
    return CACHE


def _send(node_modules: Path, library: str, collector: Collector, user: str, count: int, pad: int) -> None:
    done = subprocess.run(["node", str(node_modules / "send.js"), library, collector.url, collector.write_key, user,
                           str(count), str(pad)], cwd=node_modules, capture_output=True, text=True, timeout=120,
                          check=False, env={"PATH": "/usr/bin:/bin", "PAGE_URL": PAGE_URL,
                                            "NODE_PATH": str(node_modules / "node_modules")})
    assert done.returncode == 0, (done.stdout, done.stderr)


@pytest.mark.parametrize("library", ["segment", "rudder"])
def test_node_clients_work_unchanged(node_modules: Path, compat: Collector, library: str) -> None:
    user = f"node-{library}-{uuid.uuid4().hex[:8]}"
    _send(node_modules, library, compat, user, 60, 15_000)  # ~900 KB of events: past Segment's 500 KB a request
    found = rows(compat, "customer_id = {u:String}", {"u": user}, 61,
                 "type, channel, traffic_class, dateDiff('millisecond', original_timestamp, received_at) AS lag, "
                 "abs(dateDiff('millisecond', timestamp, received_at)) AS off")
    page = [r for r in found if r["type"] == "page"]
    assert [(r["channel"], r["traffic_class"]) for r in page] == [("email", "email")]
    assert {r["channel"] for r in found if r["type"] == "track"} == {"pos"}
    # the client's time (originalTimestamp for rudder-sdk-node), not the time of receipt; skew-corrected close to it
    assert min(r["lag"] for r in found) > 0 and max(r["off"] for r in found) < 10_000, json.dumps(found[:3])
