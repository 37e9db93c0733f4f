"""Model quality from an inference log: drift, invalid predictions, input schema, live performance.

The pieces, each usable alone and none importing the engine, the store, the config or Textual:

- `records`: the inference-log contract (one JSON line per scored row) and its CSV/SQLite forms;
- `tail`: incremental readers that follow a log through rotation and truncation from a plain offset;
- `reference`: a reference profile (quantile bins, a quantile sketch, category counts), never raw rows;
- `drift`: PSI with its no-drift expectation, normalised Wasserstein, Jensen-Shannon, KS;
- `schema` and `predictions`: inputs against the MLflow signature, invalid and stuck predictions;
- `performance`: predictions joined to late-arriving actuals, compared with the training run;
- `window`: a bounded current window per model version and the aggregates kept of it;
- `report`: the one-shot computation behind `mlops-console drift`.
"""
