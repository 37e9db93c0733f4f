"""The quality window's options, from `[endpoints.drift]` and the rules' thresholds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_console.core.conditions import params_for
from mlops_console.core.quality.drift import DriftOptions
from mlops_console.core.quality.performance import PerformanceOptions
from mlops_console.core.quality.window import QualityOptions

if TYPE_CHECKING:
    from mlops_console.config import EndpointSettings, Settings
    from mlops_console.config.quality import DriftSettings


def quality_options(settings: Settings, endpoint: EndpointSettings, drift: DriftSettings) -> QualityOptions:
    """The window's options: `[endpoints.drift]`, with the rules' thresholds where they shape it."""
    share = params_for(settings, "feature_drift", endpoint.name).threshold
    stuck = params_for(settings, "stuck_prediction", endpoint.name).threshold
    return QualityOptions(
        window=drift.window,
        max_rows=drift.max_rows,
        drift=DriftOptions(
            min_reference=drift.min_reference, min_current=drift.min_current, dataset_share=share
        ),
        stuck_rows=max(int(stuck), 2),
        first_rows=drift.first_rows,
    )


def performance_options(
    settings: Settings, endpoint: EndpointSettings, drift: DriftSettings
) -> PerformanceOptions:
    margin = params_for(settings, "performance_drop", endpoint.name).threshold
    return PerformanceOptions(max_delay=drift.actual_delay, min_labelled=drift.min_labelled, margin=margin)
