"""The model protocol and its engine: the Forecaster protocol and registry, the engine that fits
every series, the one rolling-origin backtest, the executors, metrics and annual aggregation."""
