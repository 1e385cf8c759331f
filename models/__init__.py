"""models: everything that knows forecasting — the model protocol and registry, the models,
the rolling-origin backtest, metrics, annual aggregation, champion choice and the
institutional comparison. Knows nothing of Prefect or MLflow."""
