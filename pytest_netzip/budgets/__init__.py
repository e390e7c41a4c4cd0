"""Thresholds from markers: their kinds, the marker signatures that make them, and how they judge."""
