"""The demo environment: a local MLflow registry, real serving processes, traffic and chaos.

Importing this package is cheap: mlflow and sklearn are only imported in child processes.
"""

from console.demo.environment import DEFAULT_ENDPOINTS, DemoEnvironment, EndpointSpec
from console.demo.processes import EndpointStartError
from console.demo.registry import build_registry

__all__ = ["DEFAULT_ENDPOINTS", "DemoEnvironment", "EndpointSpec", "EndpointStartError", "build_registry"]
