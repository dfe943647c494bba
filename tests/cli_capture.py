"Run sac_lit's command line in this process and capture what it prints."
import contextlib
import io

from sac_lit.cli import main


def cli(argv):
    "(exit status, stdout, stderr) of `python -m sac_lit *argv`."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()
