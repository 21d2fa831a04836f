"""Suite-wide test setup.

The scripted LLM server fixture (`llm_server`) ships with the package as a pytest plugin, so tests in every
area use the same test double that a container image can run standalone.

The suite never contacts the Perstack registry: `SANDBOX_NO_REGISTRY` is set for this process and every
command it starts (registry delegates are then reported unresolved, as they are offline). The registry's own
tests (tests/registry/) serve it locally and unset the variable where they need it.
"""

import os
import tempfile

os.environ["SANDBOX_NO_REGISTRY"] = "1"
# The accepted sandbox policies (`sandbox.accepted`) of in-process commands: this session's own, never the
# user's (a test's perstack.toml at a reused temp path must not meet another session's record).
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="sandbox-test-state-")

pytest_plugins = ["sandbox.testing.pytest_plugin"]
