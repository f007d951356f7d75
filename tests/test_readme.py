"""The README's Python examples run as written (one namespace, in order).

Blocks fenced as ```python are runnable examples; ```py marks snippets that need files a
reader has (a Keras model, say), which are not run here.
"""

import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    runnable = [block for block in blocks if "import" in block]  # signatures are not examples
    assert len(runnable) >= 4
    namespace: dict = {}
    for block in runnable:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["pooled"].shape == (1, 5, 16, 16, 32)
    assert namespace["prediction"].shape == (2, 5, 16, 16, 1)
    assert namespace["probabilities"].shape == (12, 3)
    assert "(1, 10, 32, 32, 32)" in capsys.readouterr().out
