"""Fixtures for the scripted LLM server's own tests.

The plugin's fixture and hook are imported rather than enabled with `pytest_plugins`, which pytest
only honours in the root conftest; `test_llm_pytest_plugin.py` checks the `pytest_plugins` route itself.
"""

from __future__ import annotations

from sandbox.testing.pytest_plugin import llm_server, pytest_runtest_makereport

__all__ = ["llm_server", "pytest_runtest_makereport"]
