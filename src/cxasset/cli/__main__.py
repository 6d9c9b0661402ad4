"""``python -m cxasset.cli``."""

from cxasset.cli import main

main()
