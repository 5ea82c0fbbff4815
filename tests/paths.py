"""Where the test suite finds things: the project root, and the shared data beside it (`../shared`,
never an absolute path, never copied into the repository)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
HH = SHARED / "data" / "hh-harmless-single-turn"
