"""The runtime tests' harness (scripted LLM server + native runtime), for running a registry Expert."""

from tests.runtime.conftest import harness, llm

__all__ = ["harness", "llm"]
