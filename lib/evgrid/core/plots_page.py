"""``dvc plots show`` as a page that works offline (``make plots``).

DVC's default HTML page loads Vega, Vega-Lite and vega-embed from a CDN, so
with no network the data plots are blank. This module writes an HTML template
for ``dvc plots show --html-template`` that carries the three libraries inline
(taken from the pinned PyPI package ``django-js-lib-vega-embed``, which ships
the unmodified minified builds of vega 5.33.0, vega-lite 5.23.0 and
vega-embed 6.29.0, BSD-3-Clause), then runs DVC with it.

The template has DVC's ``{plot_divs}`` and ``{refresh_tag}`` placeholders but
deliberately no ``{scripts}``: that is where DVC would put its CDN
``<script src=...>`` tags. Nothing is downloaded at run time.

    python -m evgrid.core.plots_page                 # -> dvc_plots/index.html
    python -m evgrid.core.plots_page --out /tmp/p    # elsewhere

The template is kept (``build/dvc_plots_template.html`` by default), so
``dvc plots diff --html-template build/dvc_plots_template.html`` works offline too.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

#: The package the JavaScript comes from, and its files, in load order.
JS_PACKAGE = "js_lib_vega_embed"
JS_FILES = {
    "vega": "static/js_lib_vega_embed/vega5.js",
    "vega-lite": "static/js_lib_vega_embed/vega-lite5.js",
    "vega-embed": "static/js_lib_vega_embed/vega-embed6.js",
}
#: Library versions in the pinned package (checked against the files' own version strings).
JS_VERSIONS = {"vega": "5.33.0", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}

DEFAULT_OUT = "dvc_plots"
DEFAULT_TEMPLATE = "build/dvc_plots_template.html"

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>evgrid: DVC plots</title>
{scripts}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""

# DVC fills the template with str.replace on these names: the inlined code must not contain them.
_DVC_PLACEHOLDERS = ("{scripts}", "{plot_divs}", "{refresh_tag}")


def library_source(name: str) -> str:
    """The minified JavaScript of ``name`` (a key of :data:`JS_FILES`), checked for its version."""
    source = files(JS_PACKAGE).joinpath(JS_FILES[name]).read_text(encoding="utf-8")
    version = JS_VERSIONS[name]
    if f'"{version}"' not in source:
        raise RuntimeError(f"{JS_PACKAGE}: {JS_FILES[name]} is not {name} {version}")
    if re.search(r"</script", source, re.IGNORECASE):
        raise RuntimeError(f"{name} contains '</script' and cannot be inlined")
    for placeholder in _DVC_PLACEHOLDERS:
        if placeholder in source:
            raise RuntimeError(f"{name} contains DVC's placeholder {placeholder}")
    return source


def template_html() -> str:
    """The offline HTML template, with the three libraries inlined."""
    scripts = "\n".join(
        f'    <script type="text/javascript">/* {name} {JS_VERSIONS[name]} (BSD-3-Clause) */\n'
        f"{library_source(name)}\n    </script>"
        for name in JS_FILES
    )
    return PAGE.format(scripts=scripts)


def write_template(path: str | Path) -> Path:
    """Write :func:`template_html` to ``path`` (folders created) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template_html(), encoding="utf-8")
    return path


def show_command(template: str | Path, out: str | Path) -> list[str]:
    """The ``dvc plots show`` command line that renders into ``out`` with ``template``."""
    return [
        sys.executable, "-m", "dvc", "plots", "show",
        "--html-template", str(template), "-o", str(out),
    ]  # fmt: skip


def render(
    out: str | Path = DEFAULT_OUT,
    template: str | Path = DEFAULT_TEMPLATE,
    cwd: str | Path | None = None,
) -> Path:
    """Write the template and run ``dvc plots show`` with it in ``cwd``; return ``index.html``.

    Relative ``out`` and ``template`` are taken relative to ``cwd`` (default: the
    repository root).
    """
    if cwd is None:
        from evgrid.core.paths import repo_root

        cwd = repo_root()
    cwd = Path(cwd)
    template = write_template(cwd / template)
    out = cwd / out
    command = show_command(template, out)
    print("$", " ".join(["dvc", *command[3:]]), flush=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}  # nothing goes over the network
    subprocess.run(command, cwd=cwd, env=env, check=True)
    index = (out / "index.html").resolve()
    if not index.exists():
        raise RuntimeError(f"dvc plots show wrote no page at {index}")
    remote = remote_scripts(index.read_text(encoding="utf-8"))
    if remote:
        raise RuntimeError(f"{index} still loads scripts from the network: {remote}")
    return index


def remote_scripts(html: str) -> list[str]:
    """The ``src`` of every ``<script>`` in ``html`` that is not a local file."""
    sources = re.findall(r"<script\b[^>]*\bsrc\s*=\s*[\"']?([^\"'\s>]+)", html, re.IGNORECASE)
    return [s for s in sources if re.match(r"(?i)(https?:)?//", s)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--template",
        default=DEFAULT_TEMPLATE,
        help="where to write the template (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    index = render(args.out, args.template)
    print(f"Plots page (works offline): {index}\n  open {index.as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
