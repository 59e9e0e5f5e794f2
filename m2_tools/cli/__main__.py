import sys

from m2_tools.cli import main

sys.exit(main())
