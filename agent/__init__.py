"""peer-agent: the barrier for the pods of a Kubernetes Indexed Job."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
