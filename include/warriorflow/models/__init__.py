"""Model weights: locating, joining, checking and converting them."""
