"""The product's .sql files and the one way they are read: `render_sql` for templates, `read_sql` for the rest.

A template is a Jinja2 template whose rendered text is the SQL that runs, as written: a query reads top to
bottom in its file, and what Python adds (table names, dates, the checks built from the field list) comes in
as named variables. Paths are relative to the package root, so a template can include a fragment another
folder owns (staging's activities include `sources/salesforce/sql/activity_links.sql`). Only `{{`, `{%` and
`{#` mean anything to Jinja, so a regex's `{2}` stays as written; SQL that needs one of the three literally
writes it as `{{ '{#' }}`. Values passed in are not parsed again.

A leaf: it imports nothing of the pipeline.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

PACKAGE_DIR = Path(__file__).resolve().parent


def sql_string(value: object) -> str:
    """`value` as an SQL string literal (quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE_DIR),
        # A name the caller forgot fails the render instead of vanishing from the SQL.
        undefined=jinja2.StrictUndefined,
        # SQL, not HTML: nothing is escaped; values are quoted where the template says so (`| sql_string`).
        autoescape=False,
        keep_trailing_newline=True,
        # A `{% ... %}` line leaves no blank line and no indentation behind in the rendered SQL.
        trim_blocks=True,
        lstrip_blocks=True,
        # The files are part of the installed package and do not change while it runs.
        auto_reload=False,
    )
    environment.filters["sql_string"] = sql_string
    return environment


def render_sql(path: str, /, **variables: object) -> str:
    """The SQL of the template at `path` (relative to the package, e.g. 'staging/sql/stage_deals.sql')."""
    return _environment().get_template(path).render(**variables)


@cache
def read_sql(path: str) -> str:
    """The text of a .sql file that is no template (macros.sql, schema.sql), relative to the package."""
    return (PACKAGE_DIR / path).read_text()
