"""The README's and the docs' Python examples run as written (one namespace per file, in
order), each file on its own.

Blocks fenced as ```python that import something are runnable examples (the others show a
signature); ```py marks snippets that need files a reader has (a Keras model, say), which are
not run here.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"


def examples(path: Path) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    return [block for block in blocks if "import" in block]


def run(path: Path) -> dict:
    namespace: dict = {}
    for block in examples(path):
        exec(compile(block, str(path), "exec"), namespace)
    return namespace


def test_readme_examples_run(capsys):
    assert len(examples(README)) >= 4
    namespace = run(README)
    assert namespace["pooled"].shape == (1, 5, 16, 16, 32)
    assert namespace["prediction"].shape == (2, 5, 16, 16, 1)
    assert namespace["probabilities"].shape == (12, 3)
    assert "(1, 10, 32, 32, 32)" in capsys.readouterr().out


PAGES_WITH_EXAMPLES = [page for page in sorted((ROOT / "docs").glob("*.md")) if examples(page)]


def test_some_docs_pages_have_examples():
    assert PAGES_WITH_EXAMPLES


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda page: page.name)
def test_docs_examples_run_on_their_own(page):
    run(page)


@pytest.mark.parametrize("block", examples(README), ids=lambda block: block.split("\n")[1][:40])
def test_each_readme_example_runs_on_its_own(block):
    exec(compile(block, str(README), "exec"), {})
