"""The demo environment: a local MLflow registry, real serving processes, traffic and chaos.

Importing this package is cheap: mlflow and sklearn are only imported in child processes.
"""

from mlops_console.demo.environment import DEFAULT_ENDPOINTS, DemoEnvironment, EndpointSpec
from mlops_console.demo.processes import EndpointStartError
from mlops_console.demo.registry import build_registry

__all__ = ["DEFAULT_ENDPOINTS", "DemoEnvironment", "EndpointSpec", "EndpointStartError", "build_registry"]
