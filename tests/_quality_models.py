"""A registry for the model-quality tests, trained in a child process (`python -m tests._quality_models
ROOT`) so the test process' mlflow state stays clean.

- `iris-q` v1: an imputing logistic regression on the demo's iris columns, so rows with a null input
  are still scored (and logged); its run logs `accuracy`/`f1_macro` and a `reference.csv` artifact of
  2,000 rows drawn from the same rows the demo's traffic sends (the training set has only 150).
- `constant` v1: a classifier that answers 1 whatever it is asked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests._serve_helpers import REPO, process_env

QUALITY_MODEL = "iris-q"
CONSTANT_MODEL = "constant"
REFERENCE_ROWS = 2000


def train_quality_registry(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    subprocess.run(
        [sys.executable, "-m", "tests._quality_models", str(root)],
        check=True, cwd=REPO, env=process_env(uri), capture_output=True, timeout=300,
    )  # fmt: skip
    return uri


def _train(root: Path) -> None:
    import mlflow
    from mlflow import MlflowClient
    from sklearn.dummy import DummyClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    from mlops_console.demo.datasets import IRIS, load_frame

    client = MlflowClient()
    experiment_id = client.create_experiment("quality-tests", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    features, target = load_frame(IRIS)
    x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.3, random_state=7)
    with mlflow.start_run():
        model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(x_train, y_train)
        predicted = model.predict(x_test)
        mlflow.log_metrics(
            {
                "accuracy": accuracy_score(y_test, predicted),
                "f1_macro": f1_score(y_test, predicted, average="macro"),
            }
        )
        reference = root / "reference.csv"
        features.sample(n=REFERENCE_ROWS, replace=True, random_state=11).to_csv(reference, index=False)
        mlflow.log_artifact(str(reference))
        mlflow.sklearn.log_model(
            model, name="model", input_example=x_train.head(3), registered_model_name=QUALITY_MODEL,
            pip_requirements=["scikit-learn"], serialization_format="cloudpickle",
        )  # fmt: skip
    with mlflow.start_run():
        constant = DummyClassifier(strategy="constant", constant=1).fit(x_train, y_train)
        mlflow.sklearn.log_model(
            constant, name="model", input_example=x_train.head(3), registered_model_name=CONSTANT_MODEL,
            pip_requirements=["scikit-learn"], serialization_format="cloudpickle",
        )  # fmt: skip
    client.set_registered_model_alias(QUALITY_MODEL, "production", "1")
    client.set_registered_model_alias(CONSTANT_MODEL, "production", "1")


if __name__ == "__main__":
    _train(Path(sys.argv[1]))
