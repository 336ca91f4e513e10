"""The notebooks in examples/ run top to bottom, as a reader would run them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apiq.review import Review

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize("notebook", sorted(EXAMPLES.glob("*.ipynb")), ids=lambda p: p.name)
def test_the_notebook_runs_and_shows_plans_and_results(notebook: Path) -> None:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    namespace: dict[str, Any] = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{notebook.name}", "exec"), namespace)
    review, state = namespace["review"], namespace["state"]
    assert isinstance(review, Review)
    assert "changes state" in review._repr_html_()
    assert state.status == "succeeded", state.error
    assert "<table>" in state._repr_html_()
    assert "plan.approved" in {event.action for event in namespace["trail"]}
