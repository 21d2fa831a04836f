"""Test doubles that ship with `sandbox`, for its own tests and for anyone testing Experts with it.

The scripted LLM server (`ScriptedLLMServer`) stands in for the model providers, which are never
reachable from a test machine. Importing this package pulls in starlette, uvicorn and pydantic;
`import sandbox` never imports it. The pytest fixture lives in `sandbox.testing.pytest_plugin`.
"""

from ._app import DEFAULT_MODELS
from ._remote import RemoteLLMServer
from ._script import ErrorSpec, Expectation, Script, ToolCall, Turn, Usage
from ._server import ScriptedLLMServer, TLSFiles, make_tls_files
from ._state import RecordedRequest, Unexpected

__all__ = [
    "DEFAULT_MODELS",
    "ErrorSpec",
    "Expectation",
    "RecordedRequest",
    "RemoteLLMServer",
    "Script",
    "ScriptedLLMServer",
    "TLSFiles",
    "ToolCall",
    "Turn",
    "Unexpected",
    "Usage",
    "make_tls_files",
]
