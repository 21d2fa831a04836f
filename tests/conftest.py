"""Suite-wide test setup.

The scripted LLM server fixture (`llm_server`) ships with the package as a pytest plugin, so tests in every
area use the same test double that a container image can run standalone.
"""

pytest_plugins = ["sandbox.testing.pytest_plugin"]
