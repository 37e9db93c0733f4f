"""The one module that knows where mlops-console keeps files on this machine."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "mlops-console"
CONFIG_ENV = "MLOPS_CONSOLE_CONFIG"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_config_path() -> Path:
    """`--config` wins, then `$MLOPS_CONSOLE_CONFIG`, then this file."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return config_dir() / "config.toml"


def default_store_path() -> Path:
    return data_dir() / "console.db"


def log_path() -> Path:
    """Where the console (not `watch`, which logs to stderr for journald) writes its log."""
    return data_dir() / "console.log"


def demo_dir() -> Path:
    return data_dir() / "demo"
