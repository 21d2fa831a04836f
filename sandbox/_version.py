"""The package version: one place, read by hatch and by the runtime image build."""

__version__ = "0.1.0"
