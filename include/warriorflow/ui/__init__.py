"""The flywheel status page (served by the Airflow plugin in plugins/).

* ``page``: what the page shows, as pure functions over rows read from the rating store, and its HTML;
* ``app``: the FastAPI app (HTML page, JSON, the latest report) that opens the store read-only per request.
"""
