import sys

from gnnff.cli import main

sys.exit(main())
