import warnings

# PySpark (installed for CDP_ENGINE=spark) warns on import about pandas 3, which it is only
# partly tested with; Great Expectations imports it on either engine. The Spark engine's use
# of pandas (UDF batches, Python models' frames) is covered by the engine comparison test.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
