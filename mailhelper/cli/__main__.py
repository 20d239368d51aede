"""``python -m mailhelper.cli``: the command line, as the ``mailhelper`` script."""

import sys

from mailhelper.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
