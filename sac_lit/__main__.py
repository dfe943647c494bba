__all__ = []


# %% ../notebooks/12_command_line.ipynb #e4ca3a43
import sys

from sac_lit.cli import main

spec = globals().get("__spec__")              # None inside Jupyter
if __name__ == "__main__" and getattr(spec, "name", "") == "sac_lit.__main__":
    sys.exit(main())