"""Model weights and the embedding model: locating, joining, checking and converting weights, and the
sentence-embedding model compression uses (found locally, never downloaded at run time)."""
