"""``python -m loadtest.report``: write the report for --dataset into --out (see ``main``)."""

import sys

from loadtest.report._build import main

if __name__ == "__main__":
    sys.exit(main())
