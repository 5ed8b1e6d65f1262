"""The public leaderboard page: plain HTML, readable without JavaScript, sorted by any column via links."""

from __future__ import annotations

import html
import math

from ppipe.participants.leaderboard import Board, Column

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}th,td{padding:.35rem .7rem;border-bottom:1px solid #ddd;text-align:right}
th:nth-child(2),td:nth-child(2){text-align:left}th a{color:inherit}caption{text-align:left;margin-bottom:.5rem}
"""


def render(board: Board, *, sort: str | None = None, order: str | None = None) -> str:
    """The board as an HTML document, sorted by ``sort`` (a column key) ``asc``/``desc``."""
    rows = sort_rows(board, sort, order)
    head = "".join(_header(column, board, sort, order) for column in board.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(column, row.get(column.key))}</td>" for column in board.columns)
                   + "</tr>" for row in rows)
    empty = f'<tr><td colspan="{len(board.columns)}">no participants yet</td></tr>' if not rows else ""
    name = html.escape(board.challenge)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{name} leaderboard</title>'
        f"<style>{STYLE}</style></head><body><h1>{name}</h1>"
        f'<table id="leaderboard"><caption>Leaderboard: click a column title to sort.</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}{empty}</tbody></table></body></html>"
    )


def sort_rows(board: Board, sort: str | None, order: str | None) -> list[dict]:
    columns = {c.key: c for c in board.columns}
    if sort not in columns:
        return list(board.rows)
    descending = (order or natural_order(columns[sort])) == "desc"
    present = [r for r in board.rows if r.get(sort) is not None]
    absent = [r for r in board.rows if r.get(sort) is None]  # no value sorts last either way
    return sorted(present, key=lambda r: r[sort], reverse=descending) + absent


def natural_order(column: Column) -> str:
    """Best first for numbers, A to Z for text."""
    return "desc" if column.higher_is_better and column.kind != "text" else "asc"


def _header(column: Column, board: Board, sort: str | None, order: str | None) -> str:
    current = sort == column.key
    default = natural_order(column)
    now = (order or default) if current else None
    following = ("asc" if now == "desc" else "desc") if current else default
    aria = f' aria-sort="{"descending" if now == "desc" else "ascending"}"' if current else ""
    href = f"?challenge={html.escape(board.challenge)}&amp;sort={column.key}&amp;order={following}"
    return f'<th scope="col"{aria} data-key="{column.key}"><a href="{href}">{html.escape(column.title)}</a></th>'


def _cell(column: Column, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if column.kind == "rate":
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def index(names: list[str]) -> str:
    items = "".join(f'<li><a href="?challenge={html.escape(n)}">{html.escape(n)}</a></li>' for n in names)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ppipe leaderboards</title>'
            f"<style>{STYLE}</style></head><body><h1>Leaderboards</h1><ul>{items or '<li>none</li>'}</ul></body></html>")
