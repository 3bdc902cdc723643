"""The chat page's modules under Node's own test runner (tests/frontend/*.test.mjs): the Markdown
parser with hostile input, the stream reader, the error model and the trust wording."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support import REPO_ROOT

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="needs Node.js (the README's prerequisites name it)")
def test_the_page_modules_pass_their_node_tests() -> None:
    tests = sorted(str(path) for path in (REPO_ROOT / "tests" / "frontend").glob("*.test.mjs"))
    assert tests
    result = subprocess.run([NODE, "--test", *tests], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
