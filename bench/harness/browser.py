"""How Chromium is launched: by the desk_taps benchmark and by the browser tests alike."""

from __future__ import annotations

# Debian's Chromium, never a downloaded one; the browser tests launch it the same way.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
