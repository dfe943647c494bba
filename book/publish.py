"""The branch Colab and Binder open: the repository at the built commit, with its notebooks replaced by
the executed ones of the build (outputs kept, nbdev directives gone, BOOK_SOURCE naming the commit).

    python book/publish.py            # write it to _build/launch (after `make book`)
    python book/publish.py --push     # and force-push it to the branch book-notebooks

The publishing workflow (.github/workflows/book.yml) runs it with --push after the build; it needs
BOOK_REPOSITORY (or GITHUB_REPOSITORY), and GITHUB_TOKEN to push.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from sac_publish import DEFAULT_LAUNCH_REF, book_commit, book_repository  # noqa: E402


def launch_tree(root: Path, html: Path, out: Path, commit: str) -> list[str]:
    "Write the launch tree to `out`; return the notebooks taken from the build."
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", commit],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(out, filter="data")
    executed = sorted((html / "_sources" / "notebooks").glob("*.ipynb"))
    if not executed:
        raise SystemExit(f"no executed notebooks in {html}/_sources/notebooks: run `make book` first")
    for nb in executed:
        shutil.copy(nb, out / "notebooks" / nb.name)
    return [nb.name for nb in executed]


def push(out: Path, url: str, commit: str, branch: str) -> None:
    "Commit the launch tree as a new history and force it onto `branch` of the remote `url`."
    git = ["git", "-C", str(out), "-c", "user.name=sac_lit book", "-c", "user.email=book@invalid"]
    subprocess.run(["git", "init", "-q", str(out)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", f"The book's executed notebooks at {commit}"], check=True)
    subprocess.run(git + ["push", "-q", "--force", url, f"HEAD:refs/heads/{branch}"], check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "launch")
    parser.add_argument("--push", action="store_true", help="force-push to --branch")
    parser.add_argument("--branch", default=os.environ.get("BOOK_LAUNCH_REF") or DEFAULT_LAUNCH_REF)
    args = parser.parse_args(argv)
    commit = book_commit(ROOT)
    names = launch_tree(ROOT, args.html, args.out, commit)
    print(f"{len(names)} executed notebooks at {commit[:12]} in {args.out}")
    if args.push:
        repo = book_repository()
        if repo is None:
            raise SystemExit("BOOK_REPOSITORY (or GITHUB_REPOSITORY) is needed to push")
        token = os.environ.get("GITHUB_TOKEN")
        if not token:
            raise SystemExit("GITHUB_TOKEN is needed to push")
        push(args.out, f"https://x-access-token:{token}@github.com/{repo}.git", commit, args.branch)
        print(f"pushed to {repo} branch {args.branch}")


if __name__ == "__main__":
    main()
