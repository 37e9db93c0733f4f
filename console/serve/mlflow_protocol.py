"""The one module that leans on MLflow's scoring-server internals.

`mlflow models serve` parses requests and shapes errors in `mlflow.pyfunc.scoring_server`; reusing
that code keeps us byte-compatible with it. Everything private we touch is named here, and
`tests/test_serve.py::test_mlflow_internals_still_exist` fails loudly if an MLflow upgrade moves it.
This module only runs inside the serving process, so importing mlflow at the top is fine.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from mlflow.version import VERSION as MLFLOW_VERSION

# Names this module needs from scoring_server; checked by a test so upgrades fail loudly.
REQUIRED_INTERNALS = ("invocations", "InvocationsResponse", "CONTENT_TYPE_JSON", "CONTENT_TYPE_CSV")

__all__ = ["MLFLOW_VERSION", "REQUIRED_INTERNALS", "ScoringResult", "mark_serving_environment", "score"]


@dataclass(frozen=True)
class ScoringResult:
    status: int
    body: str
    content_type: str
    inputs: Any = None
    """With `capture`: the parsed input the model scored (a DataFrame, usually)."""
    predictions: Any = None
    """With `capture`: the model's raw answer, before it was turned into JSON."""
    scored_at: float | None = None


class _Capturing:
    """The model as `invocations` sees it, keeping what it was asked and what it answered.

    One per request: `invocations` only reads `metadata` and calls `predict`.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        self.metadata = model.metadata
        self._takes_params = "params" in inspect.signature(model.predict).parameters
        self.inputs: Any = None
        self.predictions: Any = None
        self.scored_at: float | None = None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        answer = self._model.predict(data, params=params) if self._takes_params else self._model.predict(data)
        self.inputs, self.predictions, self.scored_at = data, answer, time.time()
        return answer


def mark_serving_environment() -> None:
    """Some flavours behave differently when served; mlflow's server sets this flag too."""
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT

    os.environ[_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name] = "true"


def score(model: Any, body: bytes, content_type: str | None, *, capture: bool = False) -> ScoringResult:
    """Parse a scoring request, predict, and shape the answer exactly like `mlflow models serve`.

    Blocking (runs the model): call it from a worker thread. With `capture`, the result also holds
    the parsed input and the raw predictions (for the inference log).
    """
    input_schema = model.metadata.get_input_schema()
    scorer = _Capturing(model) if capture else model
    try:
        result = scoring_server.invocations(body, content_type or "", scorer, input_schema)
    except MlflowException as e:
        return ScoringResult(e.get_http_status_code(), e.serialize_as_json(), "application/json")
    except Exception as e:  # mlflow's FastAPI app answers 500 for anything else
        body_json = json.dumps({"error_code": "INTERNAL_ERROR", "message": f"{type(e).__name__}: {e}"})
        return ScoringResult(500, body_json, "application/json")
    if isinstance(scorer, _Capturing) and result.status == 200:
        return ScoringResult(
            result.status,
            result.response,
            result.mimetype,
            scorer.inputs,
            scorer.predictions,
            scorer.scored_at,
        )
    return ScoringResult(result.status, result.response, result.mimetype)
