"""``python -m mcp_server``: the same as ``m2-tools serve``."""

import sys

from m2_tools.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
