"""simulator: a discrete-event simulator of parallel-vs-serial compute for deep learning.

Import is cheap and side-effect free; `predict` is loaded on first use.
"""

from __future__ import annotations

from typing import Any

from simulator.core.version import VERSION as __version__

__all__ = ["predict", "__version__"]


def predict(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """One prediction as a JSON-ready dict; see `simulator.predict_api.predict`."""
    from simulator.api.predict import predict as _predict

    return _predict(*args, **kwargs)
