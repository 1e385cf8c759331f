"""flows: orchestration and bookkeeping — typed settings (the only reader of config.yaml),
Prefect flows and deployment, MLflow tracking, atomic publishing and the report."""
