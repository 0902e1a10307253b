"""The book as a product: re-execute the notebooks with any parameters, build, and check it.

Book tooling of the repository, not part of the ``srlib`` package: it works on the repository's
``notebooks/``, ``book/``, ``_config.yml`` and ``_toc.yml``, which an installed ``srlib`` does
not carry. :func:`repository_root` finds them from the working directory (or, failing that,
from this file's place in the repository).

Contract. :func:`execute_notebooks` runs every numbered notebook in order with papermill
(parameters ``profile`` and ``results_root`` plus any others) into a run folder;
:func:`build_book` builds a Jupyter Book from such executed copies with execution switched
off, beside them, so runs with other profiles or parameters never share the default book's
cache or folder; :func:`check_book` opens every page in headless Chromium and lists images that
did not load and pages that show an error traceback (:func:`browser_missing` says why it cannot
run where Chromium or its driver is missing).

Command line (from the repository root; ``python tools/book.py ...`` works too)::

    python -m tools.book rerun --profile paper           # -> _build/runs/paper/_build/html
    python -m tools.book rerun --profile quick --name mine -p samples_folder /data/volumes
    python -m tools.book check _build/html
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "browser_missing",
    "build_book",
    "check_book",
    "execute_notebooks",
    "repository_root",
]

SKIP_PAGES = {"search.html", "genindex.html", "py-modindex.html"}
ERROR_MARKERS = ("Traceback (most recent call last)",)
_READY_JS = "return document.readyState === 'complete' && document.body !== null;"
_BROKEN_IMAGES_JS = """
return Array.from(document.images)
  .filter(img => !img.complete || img.naturalWidth === 0)
  .map(img => img.getAttribute('src'));
"""


def _is_repository(folder: Path) -> bool:
    return (folder / "_toc.yml").is_file() and (folder / "notebooks").is_dir()


def repository_root(start=None) -> Path:
    """The repository holding the notebooks and the book sources.

    Parameters
    ----------
    start : path, optional
        Folder to search from, upwards (default: the working directory). When neither it nor
        a parent holds ``_toc.yml`` and ``notebooks/``, the repository this file lies in.

    Returns
    -------
    pathlib.Path
        The repository's root folder.

    Raises
    ------
    FileNotFoundError
        When no such folder is found.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_repository(folder):
            return folder
    own = Path(__file__).resolve().parents[1]
    if _is_repository(own):
        return own
    raise FileNotFoundError(f"no repository (a folder with _toc.yml and notebooks/) at or above "
                            f"{here}; run from the repository root")


def execute_notebooks(run_dir, parameters: dict, *, only=None, root=None) -> list[Path]:
    """Execute the numbered notebooks in order with papermill into ``<run_dir>/notebooks``.

    Parameters
    ----------
    run_dir : path
        Folder of the run.
    parameters : dict
        Notebook parameters, e.g. ``{"profile": "paper", "results_root": "/abs/results"}``.
    only : sequence of str, optional
        Two-digit prefixes of the notebooks to run (default: all).
    root : path, optional
        Repository root (default :func:`repository_root`).

    Returns
    -------
    list of pathlib.Path
        The executed notebooks.
    """
    import papermill

    root = Path(root) if root is not None else repository_root()
    out = Path(run_dir) / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        notebooks = [nb for nb in notebooks if nb.name[:2] in set(only)]
    done = []
    for nb in notebooks:
        logger.info("executing %s with %s", nb.name, parameters)
        papermill.execute_notebook(str(nb), str(out / nb.name), parameters=parameters,
                                   cwd=str(nb.parent), kernel_name="python3")
        done.append(out / nb.name)
    return done


def build_book(run_dir, *, name: str, root=None) -> Path:
    """Build a book from executed notebooks in ``<run_dir>/notebooks`` (execution off).

    The prose pages, table of contents and configuration are copied beside the notebooks;
    notebooks not executed in this run are copied without outputs.

    Parameters
    ----------
    run_dir : path
        Folder of the run.
    name : str
        Run name, shown in the book's title.
    root : path, optional
        Repository root.

    Returns
    -------
    pathlib.Path
        The HTML folder, ``<run_dir>/_build/html``.
    """
    root = Path(root) if root is not None else repository_root()
    run_dir = Path(run_dir)
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if not (run_dir / "notebooks" / nb.name).exists():
            shutil.copy2(nb, run_dir / "notebooks" / nb.name)
    shutil.copytree(root / "book", run_dir / "book", dirs_exist_ok=True)
    shutil.copy2(root / "_toc.yml", run_dir / "_toc.yml")
    config = (root / "_config.yml").read_text()
    config = config.replace("execute_notebooks: cache", 'execute_notebooks: "off"')
    config = config.replace('title: "', f'title: "[{name}] ', 1)
    (run_dir / "_config.yml").write_text(config)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(run_dir), "-W",
           "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build of {run_dir} failed:\n{proc.stdout[-3000:]}"
                           f"\n{proc.stderr[-2000:]}")
    return run_dir / "_build" / "html"


def _browser_paths() -> tuple[str | None, str | None]:
    driver = shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    return driver, browser


def browser_missing() -> str | None:
    """Why :func:`check_book` cannot run here, or None when it can.

    Returns
    -------
    str or None
        A sentence naming what is missing (Chromium, its driver or selenium).
    """
    driver, browser = _browser_paths()
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (the test extra)")
    if not missing:
        return None
    return (f"the browser check of the book needs {' and '.join(missing)}, not found on PATH "
            f"(Debian: apt-get install chromium chromium-driver; `make browser` does it as root)")


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    reason = browser_missing()
    if reason is not None:
        raise RuntimeError(reason)
    driver_path, browser = _browser_paths()
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1300,2000"):
        options.add_argument(arg)
    options.binary_location = browser
    return webdriver.Chrome(service=Service(driver_path), options=options)


def check_book(html_dir, *, screenshot_dir=None) -> list[str]:
    """Open every page of a built book in headless Chromium; return the problems found.

    A problem is an ``<img>`` that did not load (``naturalWidth == 0``) or a page whose text
    shows an error traceback.

    Parameters
    ----------
    html_dir : path
        The book's HTML folder (e.g. ``_build/html``).
    screenshot_dir : path, optional
        Save a screenshot of every page there.

    Returns
    -------
    list of str
        One line per problem; empty when every page passes.
    """
    html_dir = Path(html_dir)
    pages = sorted(p for p in html_dir.rglob("*.html")
                   if p.name not in SKIP_PAGES and "_static" not in p.parts
                   and "_sources" not in p.parts)
    if not pages:
        return [f"no HTML pages under {html_dir}"]
    from selenium.webdriver.support.ui import WebDriverWait

    problems = []
    driver = _driver()
    try:
        for page in pages:
            driver.get(page.resolve().as_uri())
            # a page that redirects (index.html) may have no body for a moment
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(_READY_JS))
            rel = page.relative_to(html_dir)
            broken = driver.execute_script(_BROKEN_IMAGES_JS)
            problems += [f"{rel}: image did not load: {src}" for src in broken]
            text = driver.execute_script(
                "return document.body ? document.body.textContent : ''")
            if any(marker in text for marker in ERROR_MARKERS):
                problems.append(f"{rel}: page shows an error traceback")
            if screenshot_dir is not None:
                shot = Path(screenshot_dir) / (str(rel).replace("/", "_") + ".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(shot))
            logger.info("checked %s: %d broken image(s)", rel, len(broken))
    finally:
        driver.quit()
    return problems


def _literal(text: str):
    """A command-line value as a Python literal when it is one; tuples become lists.

    Papermill writes parameters as JSON-like code, in which a tuple would arrive as a string.
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text

    def lists(v):
        if isinstance(v, (tuple, list)):
            return [lists(x) for x in v]
        if isinstance(v, dict):
            return {k: lists(x) for k, x in v.items()}
        return v

    return lists(value)


def main(argv=None) -> int:
    """Command line: ``rerun`` (execute and build) and ``check`` (browser check)."""
    parser = argparse.ArgumentParser(prog="python -m tools.book", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="repository root (default: found from the working "
                                       "directory)")
    sub = parser.add_subparsers(dest="command", required=True)
    rerun = sub.add_parser("rerun", help="re-execute all notebooks and build a book from them")
    rerun.add_argument("--profile", default="quick", help="paper, quick or tiny")
    rerun.add_argument("--name", help="run name (default: the profile); use another name when "
                                      "changing parameters other than the profile")
    rerun.add_argument("--results-root", help="results root (default: <repo>/results, or "
                                              "<repo>/results/runs/<name> for a named run)")
    rerun.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"), help="extra notebook parameter")
    rerun.add_argument("--only", nargs="*", help="two-digit notebook prefixes to run")
    rerun.add_argument("--no-book", action="store_true", help="execute only")
    check = sub.add_parser("check", help="open every page in headless Chromium")
    check.add_argument("html_dir", nargs="?", default="_build/html")
    check.add_argument("--screenshot-dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = repository_root(args.root)
    if args.command == "check":
        problems = check_book(args.html_dir, screenshot_dir=args.screenshot_dir)
        for p in problems:
            print("FAIL", p)
        print(f"{'FAILED' if problems else 'OK'}: {len(problems)} problem(s)")
        return 1 if problems else 0
    name = args.name or args.profile
    # A run named after its profile shares results/<profile>/; any other run gets its own root,
    # so changed parameters never mix with (or reuse) the default outputs.
    default_root = root / "results" if name == args.profile else root / "results" / "runs" / name
    results_root = Path(args.results_root or default_root).resolve()
    run_dir = root / "_build" / "runs" / name
    params = {"profile": args.profile, "results_root": str(results_root)}
    params.update({k: _literal(v) for k, v in args.parameter})
    # Progress bars (training, Dask stages) to this terminal, not into the executed pages.
    os.environ.setdefault("SRLIB_PROGRESS", "terminal")
    execute_notebooks(run_dir, params, only=args.only, root=root)
    if not args.no_book:
        html = build_book(run_dir, name=name, root=root)
        print(f"book of run {name!r}: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
