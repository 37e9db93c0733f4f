"""Build the demo's MLflow registry: small real scikit-learn models, versions and aliases.

`build_registry` runs the training in a child process (`python -m mlops_console.demo.registry`) so the
caller never imports mlflow/sklearn, never gets its global tracking URI changed, and stays quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mlops_console.demo.datasets import DIABETES, IRIS, export_rows, load_frame

MARKER = ".registry-built.json"
EXPERIMENT = "mlops-console-demo"
BUILD_TIMEOUT_S = 300

# name -> (alias -> version); the versions are created in order by _train_all.
ALIASES = {IRIS: {"production": 2, "staging": 3}, DIABETES: {"production": 1, "staging": 2}}


def tracking_uri_for(root: Path) -> str:
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def build_registry(root: Path, reset: bool = False) -> str:
    """Create (once) a sqlite-backed registry under `root`; return its tracking URI.

    Idempotent thanks to a marker file written last; `reset=True` wipes and rebuilds.
    """
    root = Path(root).resolve()
    uri = tracking_uri_for(root)
    marker = root / MARKER
    if reset:
        for leftover in (root / "mlflow.db", root / "artifacts", root / "datasets", marker):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink(missing_ok=True)
    if marker.exists() and (root / "mlflow.db").exists():
        return uri
    # A half-built registry (crash mid-build) would yield duplicate versions: start clean.
    (root / "mlflow.db").unlink(missing_ok=True)
    shutil.rmtree(root / "artifacts", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_console.demo.registry", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        env={**os.environ, **_quiet_env()},
    )
    if proc.returncode != 0 or not marker.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        raise RuntimeError(f"building the demo registry in {root} failed (exit {proc.returncode}):\n{tail}")
    return uri


def _quiet_env() -> dict[str, str]:
    return {
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
        "GIT_PYTHON_REFRESH": "quiet",
    }


def _train_all(root: Path) -> dict[str, object]:
    """Runs in the child process only."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow
    from mlflow import MlflowClient
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import train_test_split

    uri = tracking_uri_for(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())
    )

    candidates = {
        IRIS: [
            ("logreg-strong-reg", LogisticRegression(C=0.02, max_iter=500)),
            ("logreg", LogisticRegression(C=1.0, max_iter=500)),
            ("random-forest", RandomForestClassifier(n_estimators=25, max_depth=3, random_state=0)),
        ],
        DIABETES: [
            ("ridge", Ridge(alpha=1.0)),
            ("random-forest", RandomForestRegressor(n_estimators=25, max_depth=4, random_state=0)),
        ],
    }
    import sklearn

    requirements = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}"]
    summary: dict[str, object] = {}
    for name, models in candidates.items():
        features, target = load_frame(name)
        x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.3, random_state=7)
        for label, estimator in models:
            estimator.fit(x_train, y_train)
            predicted = estimator.predict(x_test)
            if name == IRIS:
                metrics = {
                    "accuracy": accuracy_score(y_test, predicted),
                    "f1_macro": f1_score(y_test, predicted, average="macro"),
                }
            else:
                metrics = {
                    "rmse": mean_squared_error(y_test, predicted) ** 0.5,
                    "mae": mean_absolute_error(y_test, predicted),
                    "r2": r2_score(y_test, predicted),
                }
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-{label}"):
                mlflow.log_params({"algorithm": label, **_scalar_params(estimator)})
                mlflow.log_metrics(metrics)
                info = mlflow.sklearn.log_model(
                    estimator,
                    name="model",
                    input_example=x_train.head(3),
                    registered_model_name=name,
                    # Explicit requirements skip MLflow's slow dependency inference subprocess.
                    pip_requirements=requirements,
                    # Our own freshly trained models, so pickling is safe; loading skops would cost
                    # each of the demo's parallel servers ~2 s of start-up on a small machine.
                    serialization_format="cloudpickle",
                )
            version = str(info.registered_model_version)
            client.set_model_version_tag(name, version, "algorithm", label)
            summary[f"{name}/{version}"] = {"algorithm": label, **metrics}
        for alias, number in ALIASES[name].items():
            client.set_registered_model_alias(name, alias, str(number))
        export_rows(root, name)
    return summary


def _scalar_params(estimator: object) -> dict[str, object]:
    params = estimator.get_params()  # type: ignore[attr-defined]
    return {k: v for k, v in params.items() if isinstance(v, int | float | str | bool) and v is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train the demo models into a sqlite MLflow registry")
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    started = time.monotonic()
    summary = _train_all(root)
    marker = {"tracking_uri": tracking_uri_for(root), "seconds": round(time.monotonic() - started, 2)}
    (root / MARKER).write_text(json.dumps({**marker, "versions": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
