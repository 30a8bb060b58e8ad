"""``python -m gpbo``: the ``gpbo`` command (see :mod:`gpbo.cli`)."""

from __future__ import annotations

from gpbo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
