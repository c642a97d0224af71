"""warriorflow: an Airflow-scheduled data flywheel that makes SFT data for code LLMs from expert battles."""

__version__ = "0.1.0"
