"""`python -m sac_lit`: the command line of chapter 12 (`sac_lit.cli.main`).

Written by hand, like `__init__.py`: every other module is generated from the notebooks. (A cell
exported here would start the command line inside its notebook, which Jupyter runs as `__main__`.)
"""
import sys

from sac_lit.cli import main

if __name__ == "__main__":
    sys.exit(main())
