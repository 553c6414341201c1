"""`make bench`: placeholder until the benchmark issue lands; runs the scenarios that exist."""

from __future__ import annotations

import sys


def main() -> int:
    print("bench: the benchmark scenarios arrive with the benchmark issue (#9)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
