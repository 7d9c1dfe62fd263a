"""`python -m kiosk.keys`: write the instance keys once (demo mode and first setup)."""

from __future__ import annotations

import os
import sys

from kiosk.config import write_keys_file


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    instance = os.environ.get("KIOSK_INSTANCE_PATH") or os.path.join(root, "instance")
    path = write_keys_file(instance)
    print(f"keys: {path} (mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
