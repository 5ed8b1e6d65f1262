"""``ppipe scenario NAME``: the organiser's record of what a challenge's scenario did, release by release."""

from __future__ import annotations

from rich.table import Table

from ppipe.cli.common import JsonFlag, Name, command, console, group, lazy_module, print_json

api = lazy_module("ppipe.api")
describe = lazy_module("ppipe.scenario.describe")

app = group()


@command(app, "scenario")
def scenario(name: Name, json_output: JsonFlag = False) -> None:
    """What the scenario did to which rows and columns of each release cut so far (organiser only:
    this record is kept under PPIPE_HOME and never uploaded), and what is planned for the others."""
    document = api.scenario(name)
    if json_output:
        print_json(document)
        return
    table = Table(title=f"{name}: scenario (seed {document['seed']})")
    for column in ("release", "event", "columns", "done"):
        table.add_column(column)
    for release in document["releases"]:
        if release["cut"]:
            rows = describe.done_rows(release["record"]) or [("", "", "nothing")]
        else:
            rows = [(phrase, "", "planned, not cut yet") for phrase in release["planned"]] or [("", "", "not cut yet")]
        for i, (event, columns, done) in enumerate(rows):
            table.add_row(release["release"] if i == 0 else "", event, columns, done)
    console.print(table)
