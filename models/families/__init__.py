"""The model families: baselines (naive, seasonal naive, ETS, Theta), ARIMA, Prophet, and the
leading-indicator models (ARIMAX, the chip cycle, chip momentum)."""
