"""gunicorn settings for the floor (bench/floor_app.py): the repo's gunicorn.conf.py as it is,
less the kiosk's settings check, which the floor (no keys, no mail) has nothing to pass."""

import runpy
from pathlib import Path

_REPO_CONFIG = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"
globals().update(
    {k: v for k, v in runpy.run_path(str(_REPO_CONFIG)).items() if not k.startswith("__")}
)


def on_starting(server):  # type: ignore[no-untyped-def]
    """Nothing to check: the floor reads no settings."""
