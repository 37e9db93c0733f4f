"""Promote and roll back model versions: planning and guards (`plan`), the alias history (`history`),
and carrying a plan out (`Promoter`). Redeploying the endpoints is `core.deploy_fanout`."""

from __future__ import annotations

from mlops_console.core.promotion.plan import ChangePlan, missing_hook_env, serving_endpoints
from mlops_console.core.promotion.promoter import ChangeResult, Promoter
from mlops_console.core.promotion.target import LEGACY_STAGES, Target, resolve_target

__all__ = [
    "LEGACY_STAGES",
    "ChangePlan",
    "ChangeResult",
    "Promoter",
    "Target",
    "missing_hook_env",
    "resolve_target",
    "serving_endpoints",
]
