"""One line of flush progress on a terminal, rewritten in place, ended once it was shown."""

from __future__ import annotations

import sys


class FlushProgress:
    """`objfs: storing 12.5 MiB before unmounting...`, for flushes that outlast a second."""

    def __init__(self) -> None:
        self.shown = False

    def show(self, dirty_bytes: float) -> None:
        print(f"\robjfs: storing {dirty_bytes / 2**20:.1f} MiB before unmounting...", end="", file=sys.stderr)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr)
