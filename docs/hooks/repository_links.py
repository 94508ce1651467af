"""Links from a guide to a file of the repository outside docs/ (`../bench/RESULTS.md`), in the site.

The guides link such files relatively, as GitHub shows them. The site holds only docs/, so there each
such link points to the file on GitHub instead (`repo_url`, branch main), and a link to a file that
does not exist is a warning, which `mkdocs build --strict` turns into a failure, as it does for a
broken link between guides.
"""

import logging
import os
import re

log = logging.getLogger("mkdocs.hooks.repository_links")

# Only links that leave docs/ start with "../" from every page; code (`f(x)[i](y)`) never does.
LINK = re.compile(r"\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown, page, config, **kwargs):
    docs_dir = os.path.realpath(config["docs_dir"])
    root = os.path.dirname(os.path.realpath(config["config_file_path"]))
    page_dir = os.path.dirname(os.path.join(docs_dir, page.file.src_path))

    def replace(match):
        target = os.path.realpath(os.path.join(page_dir, match.group(1)))
        if target.startswith(docs_dir + os.sep):
            return match.group(0)  # a page of the site: mkdocs checks it
        relative = os.path.relpath(target, root)
        if relative.startswith(".."):
            log.warning(f"{page.file.src_path}: link '{match.group(1)}' leaves the repository")
            return match.group(0)
        if not os.path.exists(target):
            log.warning(f"{page.file.src_path}: link '{match.group(1)}' names {relative}, which does not exist")
            return match.group(0)
        kind = "tree" if os.path.isdir(target) else "blob"
        return f"]({config['repo_url'].rstrip('/')}/{kind}/main/{relative}{match.group(2) or ''})"

    return LINK.sub(replace, markdown)
